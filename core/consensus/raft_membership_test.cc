// Membership: the Changer's rules, joint consensus (both majorities, auto and
// explicit leave), one pending change at a time, learners, and removing the leader.
#include <gtest/gtest.h>

#include "core/consensus/codec.h"
#include "core/consensus/confchange.h"
#include "core/consensus/raft.h"
#include "core/consensus/test_network.h"

namespace gojodb::consensus {
namespace {

using testing::Network;
using testing::NewStorageWithPeers;
using testing::ReadMessages;
using testing::TestConfig;

ConfChangeSingle Add(uint64_t id) { return {ConfChangeType::kAddNode, NodeId(id)}; }
ConfChangeSingle Remove(uint64_t id) { return {ConfChangeType::kRemoveNode, NodeId(id)}; }
ConfChangeSingle AddLearner(uint64_t id) { return {ConfChangeType::kAddLearnerNode, NodeId(id)}; }

ProgressTracker TrackerWith(std::initializer_list<uint64_t> voters) {
  ProgressTracker t(16, 0);
  ConfState cs;
  for (uint64_t v : voters) cs.voters.push_back(NodeId(v));
  auto r = RestoreConfig(cs, LogIndex(10), 16, 0);
  EXPECT_TRUE(r.ok());
  t.config = r->first;
  t.progress = r->second;
  return t;
}

std::unique_ptr<Raft> NewRaft(uint64_t id, const Storage* s,
                              const std::function<void(Config*)>& f = nullptr) {
  Config c = TestConfig(id, 10, 1, s);
  if (f) f(&c);
  auto r = Raft::Create(c);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return std::move(r).value();
}

Message Ack(uint64_t from, uint64_t term, uint64_t index) {
  Message m;
  m.type = MessageType::kAppResp;
  m.from = NodeId(from);
  m.to = NodeId(1);
  m.term = Term(term);
  m.index = LogIndex(index);
  return m;
}

// A conf change proposal addressed to node 1.
Message ConfProp(const ConfChange& cc) {
  Message m;
  m.type = MessageType::kProp;
  m.to = NodeId(1);
  m.from = NodeId(1);
  Entry e;
  e.type = EntryType::kConfChange;
  e.data = EncodeConfChange(cc);
  m.entries.push_back(e);
  return m;
}

void ApplyAll(Network& n) {
  for (int round = 0; round < 3; ++round) {
    for (uint64_t id : n.ids()) {
      if (n.raft(id) == nullptr) continue;
      n.PersistAndApply(id);
      n.Send(ReadMessages(n.raft(id)));
    }
  }
}

TEST(ChangerTest, SimpleChangeAllowsOneVoter) {
  ProgressTracker t = TrackerWith({1, 2, 3});
  Changer c(t, LogIndex(10));
  auto one = c.Simple({Add(4)});
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->first.voters.incoming.size(), 4u);
  EXPECT_EQ(one->second.at(NodeId(4)).next, LogIndex(10));
  EXPECT_FALSE(c.Simple({Add(4), Add(5)}).ok());
  EXPECT_FALSE(c.Simple({Remove(1), Add(5)}).ok());
  // Adding a learner and swapping one voter is fine.
  EXPECT_TRUE(c.Simple({Add(4), AddLearner(5)}).ok());
}

TEST(ChangerTest, RejectsRemovingAllVotersAndBadJointTransitions) {
  ProgressTracker t = TrackerWith({1});
  Changer c(t, LogIndex(1));
  EXPECT_FALSE(c.Simple({Remove(1)}).ok());
  EXPECT_FALSE(c.LeaveJoint().ok());  // not joint
  auto joint = c.EnterJoint(false, {Add(2), Add(3)});
  ASSERT_TRUE(joint.ok());
  t.config = joint->first;
  t.progress = joint->second;
  Changer c2(t, LogIndex(1));
  EXPECT_FALSE(c2.EnterJoint(false, {Add(4)}).ok());  // already joint
  EXPECT_FALSE(c2.Simple({Add(4)}).ok());             // simple in joint
  auto left = c2.LeaveJoint();
  ASSERT_TRUE(left.ok());
  EXPECT_FALSE(left->first.voters.joint());
  EXPECT_EQ(left->first.voters.incoming.size(), 3u);
}

TEST(ChangerTest, DemotingAnOutgoingVoterUsesLearnersNext) {
  ProgressTracker t = TrackerWith({1, 2, 3});
  Changer c(t, LogIndex(5));
  auto joint = c.EnterJoint(true, {AddLearner(3), Add(4)});
  ASSERT_TRUE(joint.ok());
  const TrackerConfig& cfg = joint->first;
  // 3 still votes in the outgoing config: not a learner yet.
  EXPECT_TRUE(cfg.learners_next.count(NodeId(3)));
  EXPECT_FALSE(cfg.learners.count(NodeId(3)));
  EXPECT_FALSE(joint->second.at(NodeId(3)).is_learner);
  EXPECT_TRUE(cfg.auto_leave);
  t.config = joint->first;
  t.progress = joint->second;
  auto left = Changer(t, LogIndex(5)).LeaveJoint();
  ASSERT_TRUE(left.ok());
  EXPECT_TRUE(left->first.learners.count(NodeId(3)));
  EXPECT_TRUE(left->second.at(NodeId(3)).is_learner);
  EXPECT_FALSE(left->first.auto_leave);
}

TEST(ChangerTest, RemovedOutgoingVoterKeepsProgressUntilLeave) {
  ProgressTracker t = TrackerWith({1, 2, 3});
  auto joint = Changer(t, LogIndex(5)).EnterJoint(false, {Remove(3)});
  ASSERT_TRUE(joint.ok());
  EXPECT_TRUE(joint->second.count(NodeId(3)));
  t.config = joint->first;
  t.progress = joint->second;
  auto left = Changer(t, LogIndex(5)).LeaveJoint();
  ASSERT_TRUE(left.ok());
  EXPECT_FALSE(left->second.count(NodeId(3)));
}

TEST(RaftMembershipTest, JointConfigNeedsBothMajoritiesToCommit) {
  auto s = NewStorageWithPeers({1, 2, 3});
  auto r = NewRaft(1, s.get());
  r->BecomeCandidate();
  r->BecomeLeader();  // term 1, entry 1
  ConfChange cc;
  cc.changes = {Add(4), Add(5), Remove(2), Remove(3)};  // {1,2,3} -> {1,4,5}
  ASSERT_TRUE(r->ApplyConfChange(cc).ok());
  ASSERT_TRUE(r->tracker().config.voters.joint());
  ReadMessages(r.get());
  // The incoming majority {1,4,5} alone does not commit...
  ASSERT_TRUE(r->Step(Ack(4, 1, 1)).ok());
  ASSERT_TRUE(r->Step(Ack(5, 1, 1)).ok());
  EXPECT_EQ(r->log().committed(), LogIndex(0));
  // ...until the outgoing majority {1,2,3} agrees too.
  ASSERT_TRUE(r->Step(Ack(2, 1, 1)).ok());
  EXPECT_EQ(r->log().committed(), LogIndex(1));
}

TEST(RaftMembershipTest, JointElectionNeedsBothMajorities) {
  auto s = NewStorageWithPeers({1, 2, 3});
  auto r = NewRaft(1, s.get());
  ConfChange cc;
  cc.changes = {Add(4), Add(5), Remove(2), Remove(3)};
  ASSERT_TRUE(r->ApplyConfChange(cc).ok());
  r->BecomeCandidate();
  // Simulate the campaign's votes through responses.
  r->mutable_tracker().ResetVotes();
  r->mutable_tracker().RecordVote(NodeId(1), true);
  auto vote = [&](uint64_t from, bool granted) {
    Message m;
    m.type = MessageType::kVoteResp;
    m.from = NodeId(from);
    m.term = r->term();
    m.reject = !granted;
    ASSERT_TRUE(r->Step(m).ok());
  };
  vote(4, true);
  vote(5, true);
  EXPECT_EQ(r->state(), StateType::kCandidate);  // incoming won, outgoing pending
  vote(2, true);
  EXPECT_EQ(r->state(), StateType::kLeader);
}

TEST(RaftMembershipTest, AutoLeaveAfterJointIsApplied) {
  Network n(3);
  n.Campaign(1);
  ConfChange cc;
  cc.changes = {AddLearner(4), Remove(3)};
  cc.transition = ConfChangeTransition::kJointImplicit;
  n.Send(ConfProp(cc));
  ApplyAll(n);
  // The leader proposed the leave by itself once the joint config was applied.
  const TrackerConfig& cfg = n.raft(1)->tracker().config;
  EXPECT_FALSE(cfg.voters.joint());
  EXPECT_EQ(cfg.voters.incoming.size(), 2u);
  EXPECT_TRUE(cfg.learners.count(NodeId(4)));
  EXPECT_EQ(n.raft(2)->tracker().config, cfg);
}

TEST(RaftMembershipTest, ExplicitJointWaitsForLeaveAndRefusesOtherChanges) {
  Network n(3);
  n.Campaign(1);
  ConfChange cc;
  cc.changes = {Add(4), Remove(3)};
  cc.transition = ConfChangeTransition::kJointExplicit;
  n.Send(ConfProp(cc));
  ApplyAll(n);
  ASSERT_TRUE(n.raft(1)->tracker().config.voters.joint());
  // Another change while joint becomes a no-op entry.
  ConfChange other;
  other.changes = {AddLearner(5)};
  LogIndex before = n.raft(1)->log().LastIndex();
  n.Send(ConfProp(other));
  auto last = n.raft(1)->log().AllEntries().back();
  EXPECT_EQ(last.index, before + 1);
  EXPECT_EQ(last.type, EntryType::kNormal);
  EXPECT_TRUE(last.data.empty());
  ApplyAll(n);
  EXPECT_TRUE(n.raft(1)->tracker().config.voters.joint());
  // The explicit leave works.
  n.Send(ConfProp(ConfChange{}));
  ApplyAll(n);
  EXPECT_FALSE(n.raft(1)->tracker().config.voters.joint());
  EXPECT_TRUE(n.raft(1)->tracker().config.voters.incoming.contains(NodeId(4)));
  EXPECT_FALSE(n.raft(1)->tracker().config.voters.incoming.contains(NodeId(3)));
}

TEST(RaftMembershipTest, OnlyOnePendingConfChange) {
  Network n(3);
  n.Campaign(1);
  n.PersistAndApply(1);  // apply the leader's empty entry
  ConfChange a;
  a.changes = {AddLearner(4)};
  ConfChange b;
  b.changes = {AddLearner(5)};
  n.Isolate(2);
  n.Isolate(3);  // nothing commits
  n.Send(ConfProp(a));
  n.Send(ConfProp(b));
  auto ents = n.raft(1)->log().AllEntries();
  ASSERT_EQ(ents.size(), 3u);
  EXPECT_EQ(ents[1].type, EntryType::kConfChange);
  EXPECT_EQ(ents[2].type, EntryType::kNormal);  // refused: a is still pending
}

TEST(RaftMembershipTest, LeaveJointRefusedWhenNotJoint) {
  Network n(3);
  n.Campaign(1);
  n.PersistAndApply(1);
  n.Send(ConfProp(ConfChange{}));
  EXPECT_EQ(n.raft(1)->log().AllEntries().back().type, EntryType::kNormal);
}

TEST(RaftLearnerTest, LearnerNeverCampaignsAndDoesNotCount) {
  auto s1 = NewStorageWithPeers({1}, {2});
  auto s2 = NewStorageWithPeers({1}, {2});
  auto learner = NewRaft(2, s2.get());
  EXPECT_TRUE(learner->is_learner());
  for (int i = 0; i < 100; ++i) learner->Tick();
  EXPECT_EQ(learner->state(), StateType::kFollower);
  EXPECT_EQ(learner->term(), Term(0));
  EXPECT_TRUE(ReadMessages(learner.get()).empty());
  // A learner's vote is not counted: a two-node group with one voter and one
  // learner commits with the voter alone and elects it alone.
  auto voter = NewRaft(1, s1.get());
  for (int i = 0; i < 20; ++i) voter->Tick();
  EXPECT_EQ(voter->state(), StateType::kLeader);
}

TEST(RaftLearnerTest, LearnerReplicatesAndCanBePromoted) {
  std::vector<testing::TestPeer> peers(2);
  for (uint64_t id = 1; id <= 2; ++id) {
    peers[id - 1].storage = NewStorageWithPeers({1}, {2});
    peers[id - 1].raft = NewRaft(id, peers[id - 1].storage.get());
  }
  Network n(std::move(peers));
  n.Campaign(1);
  n.Propose(1, "x");
  EXPECT_EQ(n.raft(2)->log().committed(), n.raft(1)->log().committed());
  ConfChange promote;
  promote.changes = {Add(2)};
  n.Send(ConfProp(promote));
  ApplyAll(n);
  EXPECT_FALSE(n.raft(2)->is_learner());
  EXPECT_TRUE(n.raft(2)->Promotable());
  // Now 2 counts: with 2 cut off, nothing commits.
  n.Isolate(2);
  LogIndex committed = n.raft(1)->log().committed();
  n.Propose(1, "y");
  EXPECT_EQ(n.raft(1)->log().committed(), committed);
}

TEST(RaftMembershipTest, RemovedLeaderHandsOffOnceVotersCaughtUp) {
  Network n(3);
  n.Campaign(1);
  ConfChange cc;
  cc.changes = {Remove(1)};
  n.Send(ConfProp(cc));
  ApplyAll(n);  // everyone applies the removal
  EXPECT_FALSE(n.raft(1)->tracker().config.voters.contains(NodeId(1)));
  ASSERT_EQ(n.raft(1)->state(), StateType::kLeader);  // still leading
  // Proposals to a removed leader are dropped.
  Message p;
  p.type = MessageType::kProp;
  p.entries.push_back(Entry{});
  EXPECT_TRUE(IsProposalDropped(n.raft(1)->Step(p)));
  // Once the remaining voters acknowledge its whole log, it hands off.
  n.raft(1)->msgs().clear();
  Message beat;
  beat.type = MessageType::kBeat;
  beat.to = NodeId(1);
  n.Send(beat);
  EXPECT_EQ(n.raft(1)->state(), StateType::kFollower);
  bool new_leader =
      n.raft(2)->state() == StateType::kLeader || n.raft(3)->state() == StateType::kLeader;
  EXPECT_TRUE(new_leader);
}

void RunStuckJointRescue(bool demoted);

TEST(RaftMembershipTest, RemovedNodeWithLongerLogLeadsStuckGroupOutOfJoint) {
  RunStuckJointRescue(false);
}

TEST(RaftMembershipTest, DemotedNodeWithLongerLogLeadsStuckGroupOutOfJoint) {
  RunStuckJointRescue(true);
}

void RunStuckJointRescue(bool demoted) {
  // Joint (1 3)&&(2 3) is being left. 2 was removed and applied the leave; it holds
  // the longest log. 1 and 3 never learned that the leave committed, so as far as
  // they know they still need 2's vote, which 2 must refuse (its log is longer).
  // Without help no one could ever be elected.
  ConfChange leave;  // empty: leave joint
  std::vector<Entry> ents = {
      Entry{Term(1), LogIndex(1)}, Entry{Term(1), LogIndex(2)},
      Entry{Term(1), LogIndex(3), EntryType::kConfChange, EncodeConfChange(leave)},
      Entry{Term(1), LogIndex(4)}};
  std::vector<testing::TestPeer> peers(3);
  for (uint64_t id = 1; id <= 3; ++id) {
    auto& p = peers[id - 1];
    p.storage = std::make_unique<MemoryStorage>();
    ConfState cs;
    cs.voters = {NodeId(1), NodeId(3)};
    if (id != 2) cs.voters_outgoing = {NodeId(2), NodeId(3)};
    if (demoted && id != 2) cs.learners_next = {NodeId(2)};
    if (demoted && id == 2) cs.learners = {NodeId(2)};
    p.storage->Bootstrap(cs);
    std::vector<Entry> mine = ents;
    if (id != 2) mine.pop_back();
    ASSERT_TRUE(p.storage->Append(mine).ok());
    p.storage->SetHardState(HardState{Term(1), kNoNode, LogIndex(id == 2 ? 4 : 2)});
    p.raft =
        NewRaft(id, p.storage.get(), [&](Config* c) { c->applied = LogIndex(id == 2 ? 4 : 2); });
  }
  Network n(std::move(peers));
  ASSERT_FALSE(n.raft(2)->Promotable());
  n.Campaign(1);
  // 2 refused 1, then led the group itself with the votes of its config (1 3).
  EXPECT_NE(n.raft(1)->state(), StateType::kLeader);
  EXPECT_EQ(n.raft(1)->log().committed(), LogIndex(5));
  EXPECT_EQ(n.raft(3)->log().committed(), LogIndex(5));
  EXPECT_NE(n.raft(2)->state(), StateType::kLeader);  // handed off once 1 and 3 caught up
  // 1 and 3 apply the leave and can elect a leader on their own.
  ApplyAll(n);
  EXPECT_FALSE(n.raft(1)->tracker().config.voters.joint());
  n.Campaign(1);
  EXPECT_EQ(n.raft(1)->state(), StateType::kLeader);
}

}  // namespace
}  // namespace gojodb::consensus
