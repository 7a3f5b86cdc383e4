// Linearizable reads: ReadIndex (heartbeat-confirmed) and leader leases.
#include <gtest/gtest.h>

#include "core/consensus/codec.h"
#include "core/consensus/raft.h"
#include "core/consensus/test_network.h"

namespace gojodb::consensus {
namespace {

using testing::Network;
using testing::ReadMessages;

Message ReadReq(uint64_t to, const std::string& ctx) {
  Message m;
  m.type = MessageType::kReadIndex;
  m.to = NodeId(to);
  m.from = NodeId(to);
  m.context = ctx;
  return m;
}

void LeaseOn(Config* c) {
  c->check_quorum = true;
  c->read_only_option = ReadOnlyOption::kLeaseBased;
}

void TickAll(Network& n, int ticks) {
  for (int i = 0; i < ticks; ++i) {
    for (uint64_t id : n.ids()) {
      n.raft(id)->Tick();
      n.Send(ReadMessages(n.raft(id)));
    }
  }
}

// Ticks past the boot-time vote guard (without anyone campaigning on its own), elects
// 1, and lets one heartbeat round establish its lease.
void StartLeaseGroup(Network& n) {
  for (uint64_t id : n.ids()) n.raft(id)->SetRandomizedElectionTimeout(1000);
  TickAll(n, 10);
  n.Campaign(1);
  ASSERT_EQ(n.raft(1)->state(), StateType::kLeader);
  TickAll(n, 2);
}

TEST(RaftReadIndexTest, LeaderAnswersAfterQuorumHeartbeat) {
  Network n(3);
  n.Campaign(1);
  n.Propose(1, "x");
  int heartbeats = 0;
  n.set_intercept([&](const Message& m) { heartbeats += m.type == MessageType::kHeartbeat; });
  n.Send(ReadReq(1, "r1"));
  EXPECT_EQ(heartbeats, 2);
  auto& rs = n.raft(1)->read_states();
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(rs[0].context, "r1");
  EXPECT_EQ(rs[0].index, LogIndex(2));
}

TEST(RaftReadIndexTest, IsolatedLeaderCannotServeReads) {
  Network n(3);
  n.Campaign(1);
  n.Isolate(1);
  n.Send(ReadReq(1, "r1"));
  EXPECT_TRUE(n.raft(1)->read_states().empty());
  // One ack is not a quorum...
  n.Recover();
  n.Isolate(3);
  Message beat;
  beat.type = MessageType::kBeat;
  beat.to = NodeId(1);
  n.Send(beat);
  // ...with 2 it is (leader + 2), and the pending read is confirmed by the new
  // heartbeat that carries its context.
  ASSERT_EQ(n.raft(1)->read_states().size(), 1u);
  EXPECT_EQ(n.raft(1)->read_states()[0].context, "r1");
}

TEST(RaftReadIndexTest, FollowerReadIsForwarded) {
  Network n(3);
  n.Campaign(1);
  n.Propose(1, "x");
  n.Send(ReadReq(2, "f1"));
  EXPECT_TRUE(n.raft(1)->read_states().empty());
  ASSERT_EQ(n.raft(2)->read_states().size(), 1u);
  EXPECT_EQ(n.raft(2)->read_states()[0].index, LogIndex(2));
  EXPECT_EQ(n.raft(2)->read_states()[0].context, "f1");
}

TEST(RaftReadIndexTest, FollowerWithoutLeaderRefuses) {
  Network n(3);
  EXPECT_TRUE(IsProposalDropped(n.raft(2)->Step(ReadReq(2, "x"))));
}

TEST(RaftReadIndexTest, NewLeaderWaitsForCurrentTermCommit) {
  Network n(3);
  n.Campaign(1);
  // Become leader without the others acking the term's first entry yet.
  n.Ignore(MessageType::kAppResp);
  n.Campaign(2);
  ASSERT_EQ(n.raft(2)->state(), StateType::kLeader);
  n.Send(ReadReq(2, "r"));
  EXPECT_TRUE(n.raft(2)->read_states().empty());  // commit index may be stale
  n.Recover();
  Message beat;
  beat.type = MessageType::kBeat;
  beat.to = NodeId(2);
  n.Send(beat);  // heartbeat responses trigger appends; acks commit the new entry
  ASSERT_EQ(n.raft(2)->read_states().size(), 1u);
  EXPECT_EQ(n.raft(2)->read_states()[0].index, n.raft(2)->log().committed());
}

TEST(RaftReadIndexTest, SingleVoterAnswersAtOnce) {
  Network n(1);
  n.Campaign(1);
  n.Send(ReadReq(1, "s"));
  ASSERT_EQ(n.raft(1)->read_states().size(), 1u);
  EXPECT_EQ(n.raft(1)->read_states()[0].index, LogIndex(1));
}

TEST(RaftLeaseTest, LeaderWithLeaseAnswersWithoutHeartbeat) {
  Network n(3, LeaseOn);
  StartLeaseGroup(n);
  ASSERT_TRUE(n.raft(1)->HasValidLease());
  int heartbeats = 0;
  n.set_intercept([&](const Message& m) { heartbeats += m.type == MessageType::kHeartbeat; });
  n.Send(ReadReq(1, "l1"));
  EXPECT_EQ(heartbeats, 0);
  ASSERT_EQ(n.raft(1)->read_states().size(), 1u);
}

TEST(RaftLeaseTest, LeaseExpiresWithoutAcksAndFallsBackToReadIndex) {
  Network n(3, LeaseOn);
  StartLeaseGroup(n);
  ASSERT_TRUE(n.raft(1)->HasValidLease());
  n.Isolate(1);
  // election 10, drift margin 1: the lease lasts under 7 ticks past the last acked
  // heartbeat.
  for (int i = 0; i < 7; ++i) {
    n.raft(1)->Tick();
    n.Send(ReadMessages(n.raft(1)));
  }
  EXPECT_FALSE(n.raft(1)->HasValidLease());
  n.Send(ReadReq(1, "l2"));
  EXPECT_TRUE(n.raft(1)->read_states().empty());
}

// The driver reports that ticks fell behind real time (a paused process): the lease is
// void, acks of heartbeats sent before then (still in flight) do not bring it back,
// reads take a heartbeat round, and acks of a heartbeat sent at a later tick restore it.
TEST(RaftLeaseTest, AVoidedLeaseNeedsAcksOfLaterHeartbeats) {
  Network n(3, LeaseOn);
  StartLeaseGroup(n);
  ASSERT_TRUE(n.raft(1)->HasValidLease());
  // Heartbeats go out at this tick, then the leader's clock stalls; their acks arrive
  // after it resumes.
  n.raft(1)->Tick();
  std::vector<Message> in_flight = ReadMessages(n.raft(1));
  n.raft(1)->VoidLease();
  EXPECT_FALSE(n.raft(1)->HasValidLease());
  n.Send(in_flight);
  EXPECT_FALSE(n.raft(1)->HasValidLease()) << "acks of earlier heartbeats restored the lease";

  int heartbeats = 0;
  n.set_intercept([&](const Message& m) { heartbeats += m.type == MessageType::kHeartbeat; });
  n.Send(ReadReq(1, "v1"));
  EXPECT_EQ(heartbeats, 2) << "a read under a void lease must take a heartbeat round";
  ASSERT_EQ(n.raft(1)->read_states().size(), 1u);
  n.raft(1)->read_states().clear();
  EXPECT_FALSE(n.raft(1)->HasValidLease()) << "the round's heartbeats were sent before the void";

  // A heartbeat sent at the next tick, acked by a quorum: the lease is back.
  n.raft(1)->Tick();
  n.Send(ReadMessages(n.raft(1)));
  EXPECT_TRUE(n.raft(1)->HasValidLease());
  heartbeats = 0;
  n.Send(ReadReq(1, "v2"));
  EXPECT_EQ(heartbeats, 0);
  EXPECT_EQ(n.raft(1)->read_states().size(), 1u);
}

TEST(RaftLeaseTest, FollowersRefuseVotesWhileLeaseHolds) {
  // The other side of the lease: a follower that acked the leader refuses to vote
  // for election_timeout ticks, even after it learns a higher term from elsewhere.
  Network n(3, LeaseOn);
  StartLeaseGroup(n);
  Raft* f = n.raft(2);
  // A higher-term append response from a stale node moves 2 to term 9 without a
  // leader...
  Message bump;
  bump.type = MessageType::kAppResp;
  bump.from = NodeId(3);
  bump.to = NodeId(2);
  bump.term = Term(9);
  ASSERT_TRUE(f->Step(bump).ok());
  EXPECT_EQ(f->term(), Term(9));
  ReadMessages(f);
  // ...but it still refuses a vote until the leader's lease is surely over.
  Message vote;
  vote.type = MessageType::kVote;
  vote.from = NodeId(3);
  vote.to = NodeId(2);
  vote.term = Term(10);
  vote.index = LogIndex(100);
  vote.log_term = Term(100);
  ASSERT_TRUE(f->Step(vote).ok());
  EXPECT_TRUE(f->vote().none());
  f->SetRandomizedElectionTimeout(1000);  // keep it from campaigning itself
  for (int i = 0; i < 10; ++i) f->Tick();
  ReadMessages(f);
  ASSERT_TRUE(f->Step(vote).ok());
  EXPECT_EQ(f->vote(), NodeId(3));
}

TEST(RaftLeaseTest, RestartedNodeRefusesVotesForOneElectionTimeout) {
  Network n(3, LeaseOn);
  Raft* f = n.raft(2);  // ticks_ == 0: as if just restarted
  Message vote;
  vote.type = MessageType::kVote;
  vote.from = NodeId(3);
  vote.to = NodeId(2);
  vote.term = Term(1);
  ASSERT_TRUE(f->Step(vote).ok());
  EXPECT_TRUE(f->vote().none());
}

TEST(RaftLeaseTest, TransferRevokesTheLease) {
  Network n(3, LeaseOn);
  StartLeaseGroup(n);
  ASSERT_TRUE(n.raft(1)->HasValidLease());
  // TimeoutNow lets 3 win votes that bypass the followers' leases: from the moment
  // it may have been sent, the lease is void for the rest of the term, even if the
  // transfer does not happen.
  n.Ignore(MessageType::kTimeoutNow);
  Message t;
  t.type = MessageType::kTransferLeader;
  t.from = NodeId(3);
  t.to = NodeId(1);
  n.Send(t);
  EXPECT_EQ(n.raft(1)->state(), StateType::kLeader);
  TickAll(n, 2);
  EXPECT_EQ(n.raft(1)->state(), StateType::kLeader);
  EXPECT_FALSE(n.raft(1)->HasValidLease());
}

TEST(RaftReadIndexTest, RemovedLeaderOfASingleVoterConfigMustConfirm) {
  // 1 leads, then a change leaves 2 as the only voter. Until it hands off, 1 still
  // leads, but it is not the single voter: it must not answer reads on its own, as 2
  // may already lead a newer term.
  Network n(2);
  n.Campaign(1);
  Message p;
  p.type = MessageType::kProp;
  p.to = NodeId(1);
  p.from = NodeId(1);
  Entry e;
  e.type = EntryType::kConfChange;
  ConfChange cc;
  cc.changes = {ConfChangeSingle{ConfChangeType::kRemoveNode, NodeId(1)}};
  e.data = EncodeConfChange(cc);
  p.entries.push_back(e);
  n.Send(p);
  n.PersistAndApply(1);
  ASSERT_EQ(n.raft(1)->state(), StateType::kLeader);
  ASSERT_TRUE(n.raft(1)->tracker().IsSingleton());
  n.Isolate(1);
  n.Send(ReadReq(1, "stale?"));
  EXPECT_TRUE(n.raft(1)->read_states().empty());
}

}  // namespace
}  // namespace gojodb::consensus
