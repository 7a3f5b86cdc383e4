// Snapshots and compaction, and leadership transfer.
#include <gtest/gtest.h>

#include "core/consensus/raft.h"
#include "core/consensus/test_network.h"

namespace gojodb::consensus {
namespace {

using testing::LogIds;
using testing::Network;
using testing::NewStorageWithPeers;
using testing::ReadMessages;
using testing::TestConfig;

Message Local(MessageType t, uint64_t to, uint64_t from = 0) {
  Message m;
  m.type = t;
  m.to = NodeId(to);
  m.from = NodeId(from == 0 ? to : from);
  return m;
}

// Persists node 1's log, applies it, snapshots at the applied index and compacts.
void SnapshotAndCompact(Network& n, uint64_t id) {
  n.PersistAndApply(id);
  Raft* r = n.raft(id);
  ConfState cs = r->tracker().GetConfState();
  auto snap = n.storage(id)->CreateSnapshot(r->log().applied(), &cs,
                                            "state@" + std::to_string(r->log().applied().value()));
  ASSERT_TRUE(snap.ok());
  ASSERT_TRUE(n.storage(id)->Compact(r->log().applied()).ok());
}

TEST(RaftSnapshotTest, LaggingFollowerCatchesUpFromSnapshot) {
  Network n(3);
  n.Campaign(1);
  n.Isolate(3);
  for (int i = 0; i < 10; ++i) n.Propose(1, "v" + std::to_string(i));
  SnapshotAndCompact(n, 1);
  n.Recover();
  int snaps = 0;
  n.set_intercept([&](const Message& m) { snaps += m.type == MessageType::kSnap; });
  n.Send(Local(MessageType::kBeat, 1));
  EXPECT_EQ(snaps, 1);
  Raft* f = n.raft(3);
  ASSERT_TRUE(f->log().PendingSnapshot().has_value());
  EXPECT_EQ(f->log().PendingSnapshot()->data, "state@11");
  EXPECT_EQ(f->log().committed(), LogIndex(11));
  // Replication resumes after the snapshot.
  n.PersistAndApply(3);
  n.Propose(1, "after");
  EXPECT_EQ(f->log().committed(), LogIndex(12));
  EXPECT_EQ(f->log().AllEntries().back().data, "after");
  EXPECT_EQ(n.raft(1)->tracker().Get(NodeId(3))->state, ProgressState::kReplicate);
}

TEST(RaftSnapshotTest, SnapshotDuringReplicationKeepsLogsConsistent) {
  Network n(3, [](Config* c) { c->max_inflight_msgs = 2; });
  n.Campaign(1);
  n.Propose(1, "a");
  // 3 falls behind while appends are in flight and being dropped; meanwhile the
  // leader compacts past everything 3 has.
  n.Drop(1, 3, 1.0);
  for (int i = 0; i < 6; ++i) n.Propose(1, "b" + std::to_string(i));
  SnapshotAndCompact(n, 1);
  n.PersistAndApply(2);
  n.Recover();
  for (int i = 0; i < 3; ++i) n.Propose(1, "c" + std::to_string(i));
  n.Send(Local(MessageType::kBeat, 1));
  n.PersistAndApply(3);
  n.Send(Local(MessageType::kBeat, 1));
  EXPECT_EQ(n.raft(3)->log().committed(), n.raft(1)->log().committed());
  EXPECT_EQ(n.raft(3)->log().LastIndex(), n.raft(1)->log().LastIndex());
  EXPECT_EQ(n.raft(3)->log().ZeroTermOnError(n.raft(1)->log().LastIndex()), n.raft(1)->term());
}

TEST(RaftSnapshotTest, StaleSnapshotIsIgnored) {
  auto s = NewStorageWithPeers({1, 2});
  ASSERT_TRUE(s->Append({Entry{Term(1), LogIndex(1)}, Entry{Term(1), LogIndex(2)},
                         Entry{Term(1), LogIndex(3)}})
                  .ok());
  s->SetHardState(HardState{Term(1), kNoNode, LogIndex(3)});
  auto r = Raft::Create(TestConfig(2, 10, 1, s.get()));
  ASSERT_TRUE(r.ok());
  Message m;
  m.type = MessageType::kSnap;
  m.from = NodeId(1);
  m.to = NodeId(2);
  m.term = Term(1);
  Snapshot snap;
  snap.metadata.index = LogIndex(2);
  snap.metadata.term = Term(1);
  snap.metadata.conf_state.voters = {NodeId(1), NodeId(2)};
  m.snapshot = snap;
  ASSERT_TRUE((*r)->Step(m).ok());
  EXPECT_FALSE((*r)->log().HasPendingSnapshot());
  auto out = ReadMessages(r->get());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].type, MessageType::kAppResp);
  EXPECT_EQ(out[0].index, LogIndex(3));  // our commit index
}

TEST(RaftSnapshotTest, SnapshotMatchingOurLogOnlyFastForwardsCommit) {
  auto s = NewStorageWithPeers({1, 2});
  ASSERT_TRUE(s->Append({Entry{Term(1), LogIndex(1)}, Entry{Term(1), LogIndex(2)},
                         Entry{Term(1), LogIndex(3)}})
                  .ok());
  s->SetHardState(HardState{Term(1), kNoNode, LogIndex(1)});
  auto r = Raft::Create(TestConfig(2, 10, 1, s.get()));
  ASSERT_TRUE(r.ok());
  Message m;
  m.type = MessageType::kSnap;
  m.from = NodeId(1);
  m.term = Term(1);
  Snapshot snap;
  snap.metadata.index = LogIndex(3);
  snap.metadata.term = Term(1);
  snap.metadata.conf_state.voters = {NodeId(1), NodeId(2)};
  m.snapshot = snap;
  ASSERT_TRUE((*r)->Step(m).ok());
  EXPECT_FALSE((*r)->log().HasPendingSnapshot());
  EXPECT_EQ((*r)->log().committed(), LogIndex(3));
}

TEST(RaftSnapshotTest, SnapshotRestoresMembership) {
  auto s = NewStorageWithPeers({1, 2});
  auto r = Raft::Create(TestConfig(2, 10, 1, s.get()));
  ASSERT_TRUE(r.ok());
  Message m;
  m.type = MessageType::kSnap;
  m.from = NodeId(1);
  m.term = Term(2);
  Snapshot snap;
  snap.metadata.index = LogIndex(20);
  snap.metadata.term = Term(2);
  snap.metadata.conf_state.voters = {NodeId(1), NodeId(2), NodeId(3)};
  snap.metadata.conf_state.learners = {NodeId(4)};
  m.snapshot = snap;
  ASSERT_TRUE((*r)->Step(m).ok());
  EXPECT_EQ((*r)->log().committed(), LogIndex(20));
  EXPECT_EQ((*r)->tracker().config.voters.incoming.size(), 3u);
  EXPECT_TRUE((*r)->tracker().config.learners.count(NodeId(4)));
  // Not promotable until the snapshot is persisted.
  EXPECT_FALSE((*r)->Promotable());
}

TEST(RaftSnapshotTest, FailedSnapshotGoesBackToProbeAndPauses) {
  auto s = NewStorageWithPeers({1, 2});
  ASSERT_TRUE(s->Append({Entry{Term(1), LogIndex(1)}, Entry{Term(1), LogIndex(2)}}).ok());
  ConfState cs;
  cs.voters = {NodeId(1), NodeId(2)};
  ASSERT_TRUE(s->CreateSnapshot(LogIndex(2), &cs, "x").ok());
  ASSERT_TRUE(s->Compact(LogIndex(2)).ok());
  s->SetHardState(HardState{Term(1), kNoNode, LogIndex(2)});
  auto r = std::move(Raft::Create(TestConfig(1, 10, 1, s.get()))).value();
  r->BecomeCandidate();
  r->BecomeLeader();
  r->mutable_tracker().Get(NodeId(2))->next = LogIndex(1);  // needs compacted entries
  r->mutable_tracker().Get(NodeId(2))->recent_active = true;
  ReadMessages(r.get());
  Message beat;
  beat.type = MessageType::kHeartbeatResp;
  beat.from = NodeId(2);
  beat.term = r->term();
  ASSERT_TRUE(r->Step(beat).ok());
  auto out = ReadMessages(r.get());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].type, MessageType::kSnap);
  EXPECT_EQ(r->tracker().Get(NodeId(2))->state, ProgressState::kSnapshot);
  Message fail;
  fail.type = MessageType::kSnapStatus;
  fail.from = NodeId(2);
  fail.reject = true;
  ASSERT_TRUE(r->Step(fail).ok());
  EXPECT_EQ(r->tracker().Get(NodeId(2))->state, ProgressState::kProbe);
  EXPECT_TRUE(r->tracker().Get(NodeId(2))->IsPaused());
}

// ---- Leadership transfer ----

TEST(RaftTransferTest, ToUpToDateFollower) {
  Network n(3);
  n.Campaign(1);
  n.Send(Local(MessageType::kTransferLeader, 1, 2));
  EXPECT_EQ(n.raft(2)->state(), StateType::kLeader);
  EXPECT_EQ(n.raft(1)->state(), StateType::kFollower);
  EXPECT_EQ(n.raft(1)->lead(), NodeId(2));
  EXPECT_EQ(n.raft(2)->term(), Term(2));
}

TEST(RaftTransferTest, ToLaggingFollowerCatchesItUpFirst) {
  Network n(3);
  n.Campaign(1);
  n.Isolate(3);
  n.Propose(1, "x");
  n.Recover();
  // The heartbeat round that would fix 3 is skipped: the transfer itself does it.
  n.Send(Local(MessageType::kTransferLeader, 1, 3));
  EXPECT_EQ(n.raft(3)->state(), StateType::kLeader);
  auto ents = n.raft(3)->log().AllEntries();
  ASSERT_EQ(ents.size(), 3u);  // term-1 empty entry, x, term-2 empty entry
  EXPECT_EQ(ents[1].data, "x");
}

TEST(RaftTransferTest, IgnoredForSelfAndLearnerAndDropsProposalsWhileInProgress) {
  Network n(3);
  n.Campaign(1);
  n.Send(Local(MessageType::kTransferLeader, 1, 1));
  EXPECT_EQ(n.raft(1)->state(), StateType::kLeader);
  EXPECT_TRUE(n.raft(1)->lead_transferee().none());
  // In progress (3 unreachable): proposals are refused until it ends.
  n.Isolate(3);
  n.Propose(1, "lag");
  n.Send(Local(MessageType::kTransferLeader, 1, 3));
  EXPECT_EQ(n.raft(1)->lead_transferee(), NodeId(3));
  Message p;
  p.type = MessageType::kProp;
  p.entries.push_back(Entry{});
  EXPECT_TRUE(IsProposalDropped(n.raft(1)->Step(p)));
  // It is abandoned after an election timeout.
  for (int i = 0; i < 10; ++i) n.raft(1)->Tick();
  EXPECT_TRUE(n.raft(1)->lead_transferee().none());
  EXPECT_EQ(n.raft(1)->state(), StateType::kLeader);
  EXPECT_TRUE(n.raft(1)->Step(p).ok());
}

TEST(RaftTransferTest, FollowerForwardsRequestAndTimeoutNowBypassesLease) {
  Network n(3, [](Config* c) {
    c->check_quorum = true;
    c->pre_vote = true;
  });
  n.Campaign(1);
  // Asked at a follower; everyone heard from the leader just now (in lease), yet the
  // transferee's forced campaign wins.
  n.Send(Local(MessageType::kTransferLeader, 2, 3));
  EXPECT_EQ(n.raft(3)->state(), StateType::kLeader);
  EXPECT_EQ(n.raft(2)->lead(), NodeId(3));
}

}  // namespace
}  // namespace gojodb::consensus
