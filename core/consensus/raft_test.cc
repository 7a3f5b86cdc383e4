// The Raft paper's rules, tested on the core through an in-process network:
// elections (§5.2), election safety, the election restriction (§5.4.1), log
// replication and matching (§5.3), commitment of previous-term entries (§5.4.2,
// figure 8), leader completeness, PreVote and CheckQuorum (thesis §9.6, §6.2).
#include "core/consensus/raft.h"

#include <gtest/gtest.h>

#include "core/consensus/test_network.h"

namespace gojodb::consensus {
namespace {

using testing::LogIds;
using testing::Network;
using testing::NewStorageWithPeers;
using testing::ReadMessages;
using testing::TestConfig;
using testing::TestPeer;

std::unique_ptr<Raft> NewRaft(uint64_t id, const Storage* s,
                              const std::function<void(Config*)>& f = nullptr) {
  Config c = TestConfig(id, 10, 1, s);
  if (f) f(&c);
  auto r = Raft::Create(c);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return std::move(r).value();
}

// n peers, ids 1..n; alive[i] false makes peer i+1 a black hole.
std::vector<TestPeer> Peers(std::vector<bool> alive,
                            const std::function<void(Config*)>& f = nullptr) {
  std::vector<uint64_t> ids;
  for (size_t i = 1; i <= alive.size(); ++i) ids.push_back(i);
  std::vector<TestPeer> peers;
  for (size_t i = 0; i < alive.size(); ++i) {
    TestPeer p;
    if (alive[i]) {
      p.storage = NewStorageWithPeers(ids);
      p.raft = NewRaft(i + 1, p.storage.get(), f);
    }
    peers.push_back(std::move(p));
  }
  return peers;
}

Message Msg(MessageType t, uint64_t from, uint64_t to, uint64_t term = 0) {
  Message m;
  m.type = t;
  m.from = NodeId(from);
  m.to = NodeId(to);
  m.term = Term(term);
  return m;
}

void PreVoteOn(Config* c) { c->pre_vote = true; }
void CheckQuorumOn(Config* c) { c->check_quorum = true; }
void BothOn(Config* c) {
  c->pre_vote = true;
  c->check_quorum = true;
}

// ---- Elections ----

TEST(RaftElectionTest, MajorityElectsLeader) {
  for (auto f : {std::function<void(Config*)>(nullptr), std::function<void(Config*)>(PreVoteOn)}) {
    Network all(Peers({true, true, true}, f));
    all.Campaign(1);
    EXPECT_EQ(all.raft(1)->state(), StateType::kLeader);
    EXPECT_EQ(all.raft(1)->term(), Term(1));
    EXPECT_EQ(all.raft(2)->lead(), NodeId(1));

    Network one_down(Peers({true, true, false}, f));
    one_down.Campaign(1);
    EXPECT_EQ(one_down.raft(1)->state(), StateType::kLeader);

    Network minority(Peers({true, false, false, true, false}, f));
    minority.Campaign(1);
    // Without a quorum: a candidate (term bumped) or, with PreVote, a pre-candidate
    // still at term 0.
    if (f) {
      EXPECT_EQ(minority.raft(1)->state(), StateType::kPreCandidate);
      EXPECT_EQ(minority.raft(1)->term(), Term(0));
    } else {
      EXPECT_EQ(minority.raft(1)->state(), StateType::kCandidate);
      EXPECT_EQ(minority.raft(1)->term(), Term(1));
    }
  }
}

TEST(RaftElectionTest, EachNodeCanLeadInTurn) {
  Network n(3, PreVoteOn);
  for (uint64_t id = 1; id <= 3; ++id) {
    n.Campaign(id);
    for (uint64_t other = 1; other <= 3; ++other) {
      EXPECT_EQ(n.raft(other)->lead(), NodeId(id));
      EXPECT_EQ(n.raft(other)->state(), other == id ? StateType::kLeader : StateType::kFollower);
    }
  }
}

TEST(RaftElectionTest, VotesOncePerTerm) {
  auto s = NewStorageWithPeers({1, 2, 3});
  auto r = NewRaft(1, s.get());
  Message v2 = Msg(MessageType::kVote, 2, 1, 2);
  ASSERT_TRUE(r->Step(v2).ok());
  auto out = ReadMessages(r.get());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_FALSE(out[0].reject);
  EXPECT_EQ(r->vote(), NodeId(2));
  // Another candidate in the same term is refused...
  ASSERT_TRUE(r->Step(Msg(MessageType::kVote, 3, 1, 2)).ok());
  out = ReadMessages(r.get());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].reject);
  // ...while a retransmission from the same candidate is granted again.
  ASSERT_TRUE(r->Step(v2).ok());
  out = ReadMessages(r.get());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_FALSE(out[0].reject);
}

TEST(RaftElectionTest, AtMostOneLeaderPerTermUnderLoss) {
  // Random message loss with every node campaigning repeatedly: never two leaders
  // in one term.
  Network n(5);
  for (uint64_t a = 1; a <= 5; ++a) {
    for (uint64_t b = 1; b <= 5; ++b) {
      if (a != b) n.Drop(a, b, 0.3);
    }
  }
  std::map<uint64_t, uint64_t> leader_of_term;
  for (int round = 0; round < 200; ++round) {
    n.Campaign(1 + round % 5);
    for (uint64_t id = 1; id <= 5; ++id) {
      Raft* r = n.raft(id);
      if (r->state() != StateType::kLeader) continue;
      auto [it, inserted] = leader_of_term.emplace(r->term().value(), id);
      EXPECT_EQ(it->second, id) << "two leaders in term " << r->term();
    }
  }
  EXPECT_GT(leader_of_term.size(), 10u);
}

TEST(RaftElectionTest, CandidateWithStaleLogLoses) {
  // §5.4.1: a voter denies its vote to a candidate whose log is less up to date.
  Network n(3);
  n.Campaign(1);
  n.Cut(1, 3);
  n.Propose(1, "x");  // reaches 1 and 2 only
  n.Recover();
  n.Isolate(1);
  n.Campaign(3);
  EXPECT_NE(n.raft(3)->state(), StateType::kLeader);
  n.Campaign(2);
  EXPECT_EQ(n.raft(2)->state(), StateType::kLeader);
}

TEST(RaftElectionTest, RandomizedTimeoutWithinRange) {
  auto s = NewStorageWithPeers({1, 2, 3});
  auto r = NewRaft(1, s.get(), [](Config* c) { c->random_seed = 99; });
  std::set<int> seen;
  for (int i = 0; i < 200; ++i) {
    r->BecomeFollower(r->term() + 1, kNoNode);
    int t = r->randomized_election_timeout();
    EXPECT_GE(t, 10);
    EXPECT_LT(t, 20);
    seen.insert(t);
  }
  EXPECT_GT(seen.size(), 5u);
}

TEST(RaftElectionTest, FollowerCampaignsAfterElectionTimeout) {
  auto s = NewStorageWithPeers({1, 2, 3});
  auto r = NewRaft(1, s.get());
  for (int i = 0; i < 2 * 10; ++i) r->Tick();
  EXPECT_EQ(r->state(), StateType::kCandidate);
  EXPECT_EQ(r->term(), Term(1));
  auto out = ReadMessages(r.get());
  ASSERT_EQ(out.size(), 2u);
  for (const Message& m : out) {
    EXPECT_EQ(m.type, MessageType::kVote);
    EXPECT_EQ(m.term, Term(1));
  }
}

// ---- Replication ----

TEST(RaftReplicationTest, ProposalsCommitOnAllNodes) {
  Network n(3);
  n.Campaign(1);
  for (int i = 0; i < 5; ++i)
    n.Propose(i % 3 + 1, "data" + std::to_string(i));  // followers forward
  for (uint64_t id = 1; id <= 3; ++id) {
    EXPECT_EQ(n.raft(id)->log().committed(), LogIndex(6)) << id;
    EXPECT_EQ(LogIds(*n.raft(id)), LogIds(*n.raft(1)));
  }
  auto ents = n.raft(3)->log().AllEntries();
  EXPECT_EQ(ents[1].data, "data0");
  EXPECT_EQ(ents[5].data, "data4");
}

TEST(RaftReplicationTest, FollowerDropsProposalWithoutLeader) {
  auto s = NewStorageWithPeers({1, 2, 3});
  auto r = NewRaft(2, s.get());
  Message p = Msg(MessageType::kProp, 2, 2);
  p.entries.push_back(Entry{});
  EXPECT_TRUE(IsProposalDropped(r->Step(p)));
}

TEST(RaftReplicationTest, LeaderOnlyCommitsCurrentTermEntriesByCounting) {
  // §5.4.2 / figure 8: entries of an earlier term, even when stored on a majority,
  // are committed only indirectly, once an entry of the current term is.
  auto s = NewStorageWithPeers({1, 2, 3});
  ASSERT_TRUE(s->Append({Entry{Term(1), LogIndex(1)}, Entry{Term(2), LogIndex(2)}}).ok());
  s->SetHardState(HardState{Term(2), kNoNode, LogIndex(0)});
  auto r = NewRaft(1, s.get());
  r->BecomeCandidate();  // term 3
  r->BecomeLeader();     // appends an empty entry at index 3
  ASSERT_EQ(r->log().LastIndex(), LogIndex(3));
  ReadMessages(r.get());
  Message ack2 = Msg(MessageType::kAppResp, 2, 1, 3);
  ack2.index = LogIndex(2);
  ASSERT_TRUE(r->Step(ack2).ok());
  EXPECT_EQ(r->log().committed(), LogIndex(0)) << "term-2 entry committed by counting";
  Message ack3 = ack2;
  ack3.index = LogIndex(3);
  ASSERT_TRUE(r->Step(ack3).ok());
  EXPECT_EQ(r->log().committed(), LogIndex(3));
}

TEST(RaftReplicationTest, Figure8PreviousTermEntryCanBeOverwritten) {
  // Figure 8 (c)-(d) of the Raft paper: S1 (term 4) re-replicates its term-2 entry to
  // a majority but crashes before its term-4 entry spreads; S5 (log ends in term 3)
  // is elected and overwrites it. Safety requires that the term-2 entry was never
  // considered committed.
  std::vector<TestPeer> peers;
  std::vector<std::vector<uint64_t>> logs = {{1, 2}, {1, 2}, {1}, {1}, {1, 3}};
  for (uint64_t id = 1; id <= 5; ++id) {
    TestPeer p;
    p.storage = NewStorageWithPeers({1, 2, 3, 4, 5});
    std::vector<Entry> ents;
    for (size_t i = 0; i < logs[id - 1].size(); ++i)
      ents.push_back(Entry{Term(logs[id - 1][i]), LogIndex(i + 1)});
    EXPECT_TRUE(p.storage->Append(ents).ok());
    p.storage->SetHardState(HardState{Term(3), kNoNode, LogIndex(1)});
    p.raft = NewRaft(id, p.storage.get(), PreVoteOn);
    peers.push_back(std::move(p));
  }
  Network n(std::move(peers));
  // S1 becomes leader of term 4 with votes of S2, S3 (S5's log is more up to date).
  n.Cut(1, 5);
  n.Cut(1, 4);
  n.Campaign(1);
  ASSERT_EQ(n.raft(1)->state(), StateType::kLeader);
  // It replicated [1,2,4] to S2 and S3: entry 2 (term 2) is on S1,S2,S3, a majority,
  // and so is entry 3 (term 4) - now entry 2 is committed, indirectly.
  EXPECT_EQ(n.raft(1)->log().committed(), LogIndex(3));
  EXPECT_EQ(n.raft(3)->log().ZeroTermOnError(LogIndex(2)), Term(2));

  // Replay the dangerous variant on a leader directly: the term-2 entry reaches a
  // majority, the term-4 entry does not. The leader must not commit index 2.
  auto s = NewStorageWithPeers({1, 2, 3, 4, 5});
  ASSERT_TRUE(s->Append({Entry{Term(1), LogIndex(1)}, Entry{Term(2), LogIndex(2)}}).ok());
  s->SetHardState(HardState{Term(3), kNoNode, LogIndex(1)});
  auto leader = NewRaft(1, s.get());
  leader->BecomeCandidate();
  leader->BecomeLeader();  // term 4, entry 3
  for (uint64_t from : {2, 3}) {
    Message ack = Msg(MessageType::kAppResp, from, 1, 4);
    ack.index = LogIndex(2);
    ASSERT_TRUE(leader->Step(ack).ok());
  }
  EXPECT_EQ(leader->log().committed(), LogIndex(1));
  // And S5 with log [1,3] can still win an election against S2/S3/S4 holding [1,2]:
  // that is why committing index 2 here would have been unsafe.
  MemoryStorage s5;
  s5.Bootstrap(
      ConfState{{NodeId(1), NodeId(2), NodeId(3), NodeId(4), NodeId(5)}, {}, {}, {}, false});
  ASSERT_TRUE(s5.Append({Entry{Term(1), LogIndex(1)}, Entry{Term(3), LogIndex(2)}}).ok());
  RaftLog voter_log(s.get(), kNoLimit);  // the [1,2] log
  EXPECT_TRUE(voter_log.IsUpToDate(LogIndex(2), Term(3)));
}

TEST(RaftReplicationTest, LeaderSyncsDivergentFollowerLogsFigure7) {
  // Figure 7: the leader (term 8) brings each of the followers (a)-(f) in line.
  std::vector<uint64_t> leader_terms = {1, 1, 1, 4, 4, 5, 5, 6, 6, 6};
  std::vector<std::vector<uint64_t>> followers = {
      {1, 1, 1, 4, 4, 5, 5, 6, 6},
      {1, 1, 1, 4},
      {1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6},
      {1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7},
      {1, 1, 1, 4, 4, 4, 4},
      {1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3},
  };
  auto to_entries = [](const std::vector<uint64_t>& terms) {
    std::vector<Entry> out;
    for (size_t i = 0; i < terms.size(); ++i) out.push_back(Entry{Term(terms[i]), LogIndex(i + 1)});
    return out;
  };
  for (size_t f = 0; f < followers.size(); ++f) {
    std::vector<TestPeer> peers(3);
    peers[0].storage = NewStorageWithPeers({1, 2, 3});
    ASSERT_TRUE(peers[0].storage->Append(to_entries(leader_terms)).ok());
    peers[0].storage->SetHardState(HardState{Term(8), kNoNode, LogIndex(10)});
    peers[0].raft = NewRaft(1, peers[0].storage.get());
    peers[1].storage = NewStorageWithPeers({1, 2, 3});
    ASSERT_TRUE(peers[1].storage->Append(to_entries(followers[f])).ok());
    peers[1].storage->SetHardState(HardState{Term(7), kNoNode, LogIndex(0)});
    peers[1].raft = NewRaft(2, peers[1].storage.get());
    Network n(std::move(peers));  // peer 3 is a black hole
    int rejections = 0;
    n.set_intercept(
        [&](const Message& m) { rejections += m.type == MessageType::kAppResp && m.reject; });
    n.Campaign(1);
    // The follower may have a more up-to-date log; node 3's vote decides.
    n.Send(Msg(MessageType::kVoteResp, 3, 1, 9));
    ASSERT_EQ(n.raft(1)->state(), StateType::kLeader) << "follower " << f;
    n.Propose(1, "x");
    EXPECT_EQ(LogIds(*n.raft(1)), LogIds(*n.raft(2))) << "follower " << f;
    // Conflict hints skip whole terms: a handful of round trips, not one per entry.
    EXPECT_LE(rejections, 3) << "follower " << f;
  }
}

TEST(RaftReplicationTest, LeaderCompleteness) {
  // A committed entry is present in the log of every later leader.
  Network n(5);
  n.Campaign(1);
  n.Cut(1, 4);
  n.Cut(1, 5);
  n.Propose(1, "committed");
  ASSERT_EQ(n.raft(1)->log().committed(), LogIndex(2));
  n.Recover();
  n.Isolate(1);
  n.Campaign(4);  // lacks the entry: must lose (2, 3 refuse)
  EXPECT_NE(n.raft(4)->state(), StateType::kLeader);
  n.Campaign(2);
  ASSERT_EQ(n.raft(2)->state(), StateType::kLeader);
  auto ents = n.raft(2)->log().AllEntries();
  ASSERT_GE(ents.size(), 2u);
  EXPECT_EQ(ents[1].data, "committed");
  // The new leader brings 4 and 5 up to date.
  n.Propose(2, "next");
  EXPECT_EQ(LogIds(*n.raft(4)), LogIds(*n.raft(2)));
}

TEST(RaftReplicationTest, BatchingRespectsMaxMessageSize) {
  Network n(3, [](Config* c) { c->max_size_per_msg = 100; });
  n.Campaign(1);
  n.Isolate(3);
  for (int i = 0; i < 10; ++i) n.Propose(1, std::string(30, 'a'));  // 54 bytes per entry
  n.Recover();
  size_t max_entries = 0;
  n.set_intercept([&](const Message& m) {
    if (m.type == MessageType::kApp) max_entries = std::max(max_entries, m.entries.size());
  });
  n.Send(Msg(MessageType::kBeat, 1, 1));
  EXPECT_EQ(n.raft(3)->log().LastIndex(), n.raft(1)->log().LastIndex());
  EXPECT_GE(max_entries, 1u);
  EXPECT_LE(max_entries, 2u);
}

TEST(RaftReplicationTest, InflightWindowPausesReplication) {
  auto s = NewStorageWithPeers({1, 2});
  auto r = NewRaft(1, s.get(), [](Config* c) { c->max_inflight_msgs = 3; });
  r->BecomeCandidate();
  r->BecomeLeader();
  ReadMessages(r.get());
  // Move 2 into replicate with an ack of the empty entry.
  Message ack = Msg(MessageType::kAppResp, 2, 1, 1);
  ack.index = LogIndex(1);
  ASSERT_TRUE(r->Step(ack).ok());
  ReadMessages(r.get());
  ASSERT_EQ(r->tracker().Get(NodeId(2))->state, ProgressState::kReplicate);
  for (int i = 0; i < 10; ++i) {
    Message p = Msg(MessageType::kProp, 1, 1);
    p.entries.push_back(Entry{Term(), LogIndex(), EntryType::kNormal, "x"});
    ASSERT_TRUE(r->Step(p).ok());
  }
  int apps = 0;
  for (const Message& m : ReadMessages(r.get())) apps += m.type == MessageType::kApp;
  EXPECT_EQ(apps, 3);  // pipelined up to the window, then paused
  ack.index = LogIndex(3);
  ASSERT_TRUE(r->Step(ack).ok());
  // Two slots freed: the whole backlog (indexes 5..11) goes out in one batch.
  std::vector<Message> sent;
  for (Message& m : ReadMessages(r.get())) {
    if (m.type == MessageType::kApp) sent.push_back(m);
  }
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].index, LogIndex(4));
  EXPECT_EQ(sent[0].entries.size(), 7u);
  EXPECT_FALSE(r->tracker().Get(NodeId(2))->IsPaused());
}

// ---- PreVote and CheckQuorum ----

TEST(RaftPreVoteTest, RejoiningPartitionedNodeDoesNotDisrupt) {
  Network n(3, BothOn);
  n.Campaign(1);
  n.Isolate(3);
  for (int i = 0; i < 100; ++i) {
    n.raft(3)->Tick();
    n.Send(ReadMessages(n.raft(3)));
  }
  // Pre-elections never bumped its term.
  EXPECT_EQ(n.raft(3)->term(), Term(1));
  EXPECT_EQ(n.raft(3)->state(), StateType::kPreCandidate);
  n.Recover();
  n.Send(Msg(MessageType::kBeat, 1, 1));
  EXPECT_EQ(n.raft(1)->state(), StateType::kLeader);
  EXPECT_EQ(n.raft(1)->term(), Term(1));
  EXPECT_EQ(n.raft(3)->state(), StateType::kFollower);
  EXPECT_EQ(n.raft(3)->lead(), NodeId(1));
}

TEST(RaftPreVoteTest, WithoutPreVoteRejoinBumpsTheTerm) {
  Network n(3);
  n.Campaign(1);
  n.Isolate(3);
  for (int i = 0; i < 100; ++i) {
    n.raft(3)->Tick();
    n.Send(ReadMessages(n.raft(3)));
  }
  EXPECT_GT(n.raft(3)->term(), Term(1));
  n.Recover();
  n.Send(Msg(MessageType::kBeat, 1, 1));
  n.Campaign(3);  // its higher term deposes the leader
  EXPECT_NE(n.raft(1)->term(), Term(1));
}

TEST(RaftPreVoteTest, PreCandidateWithStaleLogCannotWin) {
  Network n(3, PreVoteOn);
  n.Campaign(1);
  n.Isolate(3);
  n.Propose(1, "a");
  n.Recover();
  n.Isolate(1);
  n.Campaign(3);
  // 2 refuses the pre-vote and 1 is unreachable: no term change, no leader.
  EXPECT_EQ(n.raft(3)->state(), StateType::kPreCandidate);
  EXPECT_EQ(n.raft(3)->term(), Term(1));
  EXPECT_EQ(n.raft(2)->term(), Term(1));
  n.Campaign(2);
  EXPECT_EQ(n.raft(2)->state(), StateType::kLeader);
  EXPECT_EQ(n.raft(2)->term(), Term(2));
}

TEST(RaftCheckQuorumTest, IsolatedLeaderStepsDown) {
  Network n(3, CheckQuorumOn);
  n.Campaign(1);
  n.Isolate(1);
  // The first check still sees the acks of the election round; the second one
  // finds nobody active.
  for (int i = 0; i < 10; ++i) {
    n.raft(1)->Tick();
    n.Send(ReadMessages(n.raft(1)));
  }
  EXPECT_EQ(n.raft(1)->state(), StateType::kLeader);
  for (int i = 0; i < 10; ++i) {
    n.raft(1)->Tick();
    n.Send(ReadMessages(n.raft(1)));
  }
  EXPECT_EQ(n.raft(1)->state(), StateType::kFollower);
}

TEST(RaftCheckQuorumTest, ConnectedLeaderStays) {
  Network n(3, CheckQuorumOn);
  n.Campaign(1);
  for (int i = 0; i < 50; ++i) {
    for (uint64_t id = 1; id <= 3; ++id) {
      n.raft(id)->Tick();
      n.Send(ReadMessages(n.raft(id)));
    }
  }
  EXPECT_EQ(n.raft(1)->state(), StateType::kLeader);
  EXPECT_EQ(n.raft(1)->term(), Term(1));
}

TEST(RaftCheckQuorumTest, FollowerInLeaseIgnoresVotes) {
  Network n(3, CheckQuorumOn);
  n.Campaign(1);
  // A vote request at a higher term while 2 heard from the leader recently.
  Message v = Msg(MessageType::kVote, 3, 2, 5);
  v.index = LogIndex(100);
  v.log_term = Term(100);
  ASSERT_TRUE(n.raft(2)->Step(v).ok());
  EXPECT_EQ(n.raft(2)->term(), Term(1));
  EXPECT_TRUE(ReadMessages(n.raft(2)).empty());
  // After an election timeout without the leader, it votes.
  for (int i = 0; i < 10; ++i) n.raft(2)->Tick();
  ReadMessages(n.raft(2));
  ASSERT_TRUE(n.raft(2)->Step(v).ok());
  EXPECT_EQ(n.raft(2)->term(), Term(5));
  EXPECT_EQ(n.raft(2)->vote(), NodeId(3));
}

TEST(RaftCheckQuorumTest, StaleLeaderLearnsNewTermFromFollower) {
  Network n(3, CheckQuorumOn);
  n.Campaign(1);
  n.Isolate(1);
  for (uint64_t id : {2, 3}) {
    for (int i = 0; i < 20; ++i) n.raft(id)->Tick();
    ReadMessages(n.raft(id));
  }
  n.Campaign(2);
  ASSERT_EQ(n.raft(2)->state(), StateType::kLeader);
  n.Recover();
  // The old leader's heartbeat is answered with the new term; it steps down.
  n.Send(Msg(MessageType::kBeat, 1, 1));
  EXPECT_EQ(n.raft(1)->state(), StateType::kFollower);
  EXPECT_EQ(n.raft(1)->term(), n.raft(2)->term());
}

// ---- Term catch-up and flow control details ----

TEST(RaftTermTest, StaleVoteIsAnsweredWithOurTerm) {
  auto s = NewStorageWithPeers({1, 2, 3});
  auto r = NewRaft(1, s.get());
  r->BecomeFollower(Term(5), kNoNode);
  ASSERT_TRUE(r->Step(Msg(MessageType::kVote, 2, 1, 3)).ok());
  auto out = ReadMessages(r.get());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].type, MessageType::kVoteResp);
  EXPECT_TRUE(out[0].reject);
  EXPECT_EQ(out[0].term, Term(5));
  // The stale candidate adopts the newer term and stops campaigning in old ones.
  auto c = NewRaft(2, s.get());
  c->BecomeFollower(Term(2), kNoNode);
  c->BecomeCandidate();  // term 3
  ASSERT_TRUE(c->Step(out[0]).ok());
  EXPECT_EQ(c->state(), StateType::kFollower);
  EXPECT_EQ(c->term(), Term(5));
}

TEST(RaftTermTest, StaleLeaderLearnsOurTermWithoutCheckQuorum) {
  auto s = NewStorageWithPeers({1, 2, 3});
  auto r = NewRaft(2, s.get());
  r->BecomeFollower(Term(7), kNoNode);
  ASSERT_TRUE(r->Step(Msg(MessageType::kHeartbeat, 1, 2, 4)).ok());
  auto out = ReadMessages(r.get());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].type, MessageType::kAppResp);
  EXPECT_EQ(out[0].term, Term(7));
}

TEST(RaftTermTest, VoterThatMustRejectABetterCandidateYields) {
  auto s = NewStorageWithPeers({1, 2, 3});
  auto r = NewRaft(1, s.get());
  r->BecomeCandidate();  // term 1, voted for itself
  for (int i = 0; i < 5; ++i) r->Tick();
  ASSERT_EQ(r->election_elapsed(), 5);
  Message v = Msg(MessageType::kVote, 2, 1, 1);
  v.index = LogIndex(5);
  v.log_term = Term(1);
  ASSERT_TRUE(r->Step(v).ok());
  auto out = ReadMessages(r.get());
  ASSERT_FALSE(out.empty());
  EXPECT_TRUE(out.back().reject);
  EXPECT_EQ(r->election_elapsed(), 0);
}

TEST(RaftFlowTest, UncommittedBudgetDropsProposals) {
  auto s = NewStorageWithPeers({1, 2, 3});
  auto r = NewRaft(1, s.get(), [](Config* c) { c->max_uncommitted_entries_size = 10; });
  r->BecomeCandidate();
  r->BecomeLeader();
  auto prop = [&](size_t bytes) {
    Message p = Msg(MessageType::kProp, 1, 1);
    p.entries.push_back(Entry{Term(), LogIndex(), EntryType::kNormal, std::string(bytes, 'x')});
    return r->Step(p);
  };
  EXPECT_TRUE(prop(8).ok());
  EXPECT_TRUE(IsProposalDropped(prop(8)));
  r->ReduceUncommittedSize(8);
  EXPECT_TRUE(prop(8).ok());
}

TEST(RaftFlowTest, UnreachableFollowerGoesBackToProbe) {
  Network n(3);
  n.Campaign(1);
  n.Propose(1, "x");
  ASSERT_EQ(n.raft(1)->tracker().Get(NodeId(2))->state, ProgressState::kReplicate);
  Message u = Msg(MessageType::kUnreachable, 2, 1);
  ASSERT_TRUE(n.raft(1)->Step(u).ok());
  EXPECT_EQ(n.raft(1)->tracker().Get(NodeId(2))->state, ProgressState::kProbe);
  // The next heartbeat round brings it back to replicate.
  n.Send(Msg(MessageType::kBeat, 1, 1));
  EXPECT_EQ(n.raft(1)->tracker().Get(NodeId(2))->state, ProgressState::kReplicate);
}

}  // namespace
}  // namespace gojodb::consensus
