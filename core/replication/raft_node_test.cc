// Three RaftNodes, each on its own RocksDB, over an in-process transport: replication,
// leader loss, restart from the durable log.
#include "core/replication/raft_node.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <thread>

#include "core/replication/list_state_machine.h"
#include "core/replication/local_transport.h"
#include "internal/failpoint.h"

namespace gojodb::replication {
namespace {

using consensus::LogIndex;
using consensus::NodeId;
using namespace std::chrono_literals;

// Forwards to the in-process network, counting heartbeats that carry a ReadIndex round.
class CountingTransport final : public Transport {
 public:
  CountingTransport(LocalNetwork* net, std::atomic<uint64_t>* read_rounds)
      : net_(net), read_rounds_(read_rounds) {}
  void Send(std::vector<consensus::Message> messages) override {
    for (auto& m : messages) {
      if (m.type == consensus::MessageType::kHeartbeat && !m.context.empty()) ++*read_rounds_;
      net_->Route(std::move(m));
    }
  }

 private:
  LocalNetwork* net_;
  std::atomic<uint64_t>* read_rounds_;
};

class RaftNodeTest : public ::testing::Test {
 protected:
  struct Member {
    std::unique_ptr<storage::Engine> engine;
    std::unique_ptr<ListStateMachine> sm;
    std::unique_ptr<Transport> transport;
    std::unique_ptr<RaftNode> node;
  };

  void SetUp() override {
    dir_ =
        std::filesystem::temp_directory_path() / ("gojodb-raftnode-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    for (uint64_t id = 1; id <= 3; ++id) StartMember(id);
  }
  void TearDown() override {
    for (auto& [id, m] : members_) StopMember(id);
    members_.clear();
    std::filesystem::remove_all(dir_);
  }

  // Member options the next StartMember uses.
  uint64_t snapshot_entries_ = 0;
  uint64_t retain_entries_ = 1000;
  uint64_t snapshot_bytes_ = 0;
  uint64_t retain_bytes_ = 0;
  bool lease_reads_ = false;
  std::chrono::milliseconds tick_interval_{5};
  std::vector<NodeId> voters_ = {NodeId(1), NodeId(2), NodeId(3)};

  void StartMember(uint64_t id, bool join = false) {
    Member& m = members_[id];
    storage::EngineOptions eo;
    eo.path = (dir_ / std::to_string(id)).string();
    std::filesystem::create_directories(eo.path);
    m.engine = std::move(storage::OpenEngine(eo)).value();
    m.sm = std::make_unique<ListStateMachine>();  // in memory: rebuilt from the log
    m.transport = std::make_unique<CountingTransport>(&net_, &read_rounds_);
    RaftNodeOptions o;
    o.id = NodeId(id);
    o.initial_voters = voters_;
    o.tick_interval = tick_interval_;
    o.lease_reads = lease_reads_;
    o.random_seed = id;
    o.join = join;
    o.snapshot_entries = snapshot_entries_;
    o.retain_entries = retain_entries_;
    o.snapshot_bytes = snapshot_bytes_;
    o.retain_bytes = retain_bytes_;
    auto n = RaftNode::Start(o, m.engine.get(), m.sm.get(), m.transport.get());
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    m.node = std::move(n).value();
    net_.Attach(NodeId(id), m.node.get());
  }
  void StopMember(uint64_t id) {
    Member& m = members_[id];
    net_.Detach(NodeId(id));
    m.node.reset();
    m.engine.reset();
  }
  // Proposes through `id`, retrying while no leader is known (as a client would).
  Status ProposeVia(uint64_t id, std::string data) {
    Status s;
    for (int attempt = 0; attempt < 200; ++attempt) {
      s = members_[id].node->Propose(data, 2s);
      // UNAVAILABLE: no leader yet. DEADLINE_EXCEEDED: forwarded to a leader that died;
      // the outcome is unknown, so the retry may apply it twice (checks allow that).
      if (s.ok() ||
          (s.code() != StatusCode::kUnavailable && s.code() != StatusCode::kDeadlineExceeded)) {
        return s;
      }
      std::this_thread::sleep_for(20ms);
    }
    return s;
  }
  // Every member in `ids` applied the same list, holding each of `values`.
  bool Converged(const std::vector<uint64_t>& ids, const std::vector<std::string>& values) {
    for (int i = 0; i < 400; ++i) {
      auto ref = members_[ids[0]].sm->Items();
      bool all = true;
      for (auto id : ids) all = all && members_[id].sm->Items() == ref;
      for (const auto& v : values) all = all && std::find(ref.begin(), ref.end(), v) != ref.end();
      if (all) return true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }
  static std::vector<std::string> Values(int n) {
    std::vector<std::string> out;
    for (int i = 0; i < n; ++i) out.push_back("v" + std::to_string(i));
    return out;
  }

  void WipeMember(uint64_t id) {
    StopMember(id);
    std::filesystem::remove_all(dir_ / std::to_string(id));
  }
  uint64_t WaitLeader(uint64_t via) {
    for (int i = 0; i < 400; ++i) {
      uint64_t l = members_[via].node->Leader().value();
      if (l != 0 && members_.count(l) && members_[l].node &&
          members_[l].node->GetStatus().is_leader)
        return l;
      std::this_thread::sleep_for(10ms);
    }
    return 0;
  }

  std::filesystem::path dir_;
  LocalNetwork net_;
  std::atomic<uint64_t> read_rounds_{0};
  std::map<uint64_t, Member> members_;
};

TEST_F(RaftNodeTest, ReplicatesSurvivesLeaderLossAndRestartsFromTheDurableLog) {
  for (int i = 0; i < 30; ++i) {
    ASSERT_TRUE(ProposeVia(1 + i % 3, "v" + std::to_string(i)).ok()) << i;
  }
  ASSERT_TRUE(Converged({1, 2, 3}, Values(30)));
  const auto first = members_[1].sm->Items();
  EXPECT_EQ(members_[2].sm->Items(), first);
  EXPECT_EQ(members_[3].sm->Items(), first);

  // Lose the leader: the other two elect a new one and keep committing.
  uint64_t leader = members_[1].node->Leader().value();
  ASSERT_NE(leader, 0u);
  StopMember(leader);
  uint64_t a = leader == 1 ? 2 : 1, b = 6 - leader - a;
  for (int i = 30; i < 40; ++i) ASSERT_TRUE(ProposeVia(a, "v" + std::to_string(i)).ok()) << i;
  ASSERT_TRUE(Converged({a, b}, Values(40)));

  // The old leader restarts from its log and catches up.
  StartMember(leader);
  ASSERT_TRUE(Converged({1, 2, 3}, Values(40)));

  // Everyone restarts: each state machine is rebuilt from its own durable log.
  for (uint64_t id = 1; id <= 3; ++id) StopMember(id);
  for (uint64_t id = 1; id <= 3; ++id) StartMember(id);
  ASSERT_TRUE(ProposeVia(2, "after-restart").ok());
  auto want = Values(40);
  want.push_back("after-restart");
  ASSERT_TRUE(Converged({1, 2, 3}, want));
  EXPECT_EQ(members_[1].sm->Items().back(), "after-restart");
}

TEST_F(RaftNodeTest, MinorityCannotCommit) {
  ASSERT_TRUE(ProposeVia(1, "before").ok());
  ASSERT_TRUE(Converged({1, 2, 3}, {"before"}));
  StopMember(2);
  StopMember(3);
  // Alone, node 1 must not apply anything new.
  Status s = members_[1].node->Propose("alone", 500ms);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(members_[1].sm->Items().size(), 1u);
  // Once it knows no leader (a leader steps down without a quorum), a proposal is not
  // even appended: it fails as NotProposed, which is safe to send elsewhere, unlike an
  // unknown outcome.
  for (int i = 0; i < 400 && members_[1].node->Leader().value() != 0; ++i) {
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_EQ(members_[1].node->Leader().value(), 0u);
  s = members_[1].node->Propose("dropped", 2s);
  EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.ToString();
  EXPECT_TRUE(RaftNode::NotProposed(s)) << s.ToString();
  EXPECT_FALSE(RaftNode::NotProposed(Status::Unavailable("raft node stopped")));
  StartMember(2);
  StartMember(3);
  ASSERT_TRUE(ProposeVia(2, "after").ok());
  EXPECT_TRUE(Converged({1, 2, 3}, {"before", "after"}));
  for (const auto& v : members_[1].sm->Items()) EXPECT_NE(v, "dropped");
}

// A snapshot read on the leader waits for the writes submitted before it (decision 28):
// each submitted proposal has applied by the time WaitForProposed answers, whether it
// answers at once or after the loop took the proposal.
TEST_F(RaftNodeTest, WaitForProposedAnswersOnceEarlierProposalsApplied) {
  ASSERT_TRUE(ProposeVia(1, "first").ok());
  const uint64_t l = WaitLeader(1);
  ASSERT_NE(l, 0u);
  RaftNode& node = *members_[l].node;
  ASSERT_TRUE(node.WaitForProposed(2s).ok()) << "nothing pending";
  for (int i = 0; i < 100; ++i) {
    const std::string v = "w" + std::to_string(i);
    auto t = node.Submit(v);
    ASSERT_TRUE(t.status.ok()) << t.status.ToString();
    ASSERT_TRUE(node.WaitForProposed(5s).ok()) << i;
    const auto items = members_[l].sm->Items();
    EXPECT_TRUE(std::find(items.begin(), items.end(), v) != items.end()) << v << " not applied yet";
    ASSERT_TRUE(node.Wait(t, 5s).ok());
  }
  // A proposal meant for a past term is not proposed at all.
  const uint64_t term = node.LeaderTerm();
  ASSERT_NE(term, 0u);
  auto stale = node.Submit("stale", term + 1);  // not the term it leads in
  Status s = node.Wait(stale, 5s);
  EXPECT_TRUE(RaftNode::NotProposed(s)) << s.ToString();
  ASSERT_TRUE(ProposeVia(l, "last").ok());
  for (const auto& v : members_[l].sm->Items()) EXPECT_NE(v, "stale");
}

TEST_F(RaftNodeTest, SnapshotsCompactTheLogAndCatchUpAWipedMember) {
  for (uint64_t id = 1; id <= 3; ++id) StopMember(id);
  snapshot_entries_ = 10;
  retain_entries_ = 5;
  for (uint64_t id = 1; id <= 3; ++id) StartMember(id);
  WipeMember(3);
  for (int i = 0; i < 60; ++i) ASSERT_TRUE(ProposeVia(1, "v" + std::to_string(i)).ok()) << i;
  ASSERT_TRUE(Converged({1, 2}, Values(60)));
  auto st = members_[1].node->GetStatus();
  EXPECT_GE(st.snapshot_index.value(), 50u);
  // The wiped member's log is gone and the leader's is compacted: it can only catch up
  // through the snapshot, then the entries after it.
  StartMember(3);
  ASSERT_TRUE(ProposeVia(1, "after").ok());
  auto want = Values(60);
  want.push_back("after");
  ASSERT_TRUE(Converged({1, 2, 3}, want));
  // A restart loads the snapshot and the log after it.
  StopMember(3);
  StartMember(3);
  ASSERT_TRUE(Converged({1, 2, 3}, want));
}

// Large entries: snapshots come by bytes as well as by count, and the log kept behind
// one holds no more than retain_bytes, on every member and across a restart.
TEST_F(RaftNodeTest, ALogOfLargeEntriesIsCompactedByBytes) {
  for (uint64_t id = 1; id <= 3; ++id) StopMember(id);
  snapshot_entries_ = 10000;  // never reached here
  retain_entries_ = 1000;
  snapshot_bytes_ = 40 << 10;
  retain_bytes_ = 20 << 10;
  for (uint64_t id = 1; id <= 3; ++id) StartMember(id);
  std::vector<std::string> want;
  const std::string big(4 << 10, 'x');  // 4 KiB and a little more an entry
  for (int i = 0; i < 60; ++i) {
    want.push_back(std::to_string(i) + big);
    ASSERT_TRUE(ProposeVia(1, want.back()).ok()) << i;
  }
  ASSERT_TRUE(Converged({1, 2, 3}, want));
  for (uint64_t id = 1; id <= 3; ++id) {
    SCOPED_TRACE(id);
    GroupStatus st = members_[id].node->GetStatus();
    for (int i = 0; i < 200 && st.snapshot_index.value() < 50; ++i) {
      std::this_thread::sleep_for(10ms);  // the last snapshot may come an iteration later
      st = members_[id].node->GetStatus();
    }
    // A snapshot every 10 entries (40 KiB), the last one at or past entry 50, and
    // behind it at most 20 KiB of entries: four. The count alone (1,000) would have
    // kept the whole log.
    EXPECT_GE(st.snapshot_index.value(), 50u);
    EXPECT_GE(st.first_index.value() + 4, st.snapshot_index.value());
    EXPECT_GT(st.first_index.value(), 40u);
  }
  for (uint64_t id = 1; id <= 3; ++id) StopMember(id);
  // The members restart from the compacted logs with every entry applied.
  for (uint64_t id = 1; id <= 3; ++id) StartMember(id);
  ASSERT_TRUE(ProposeVia(1, "after").ok());
  want.push_back("after");
  ASSERT_TRUE(Converged({1, 2, 3}, want));
}

TEST_F(RaftNodeTest, MembershipChangesApplyAndSurviveRestart) {
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(ProposeVia(1, "v" + std::to_string(i)).ok());
  uint64_t leader = WaitLeader(1);
  ASSERT_NE(leader, 0u);
  // A fourth member joins with an empty log.
  StartMember(4, /*join=*/true);
  consensus::ConfChange add;
  add.changes.push_back({consensus::ConfChangeType::kAddNode, NodeId(4)});
  ASSERT_TRUE(members_[leader].node->ProposeConfChange(add, 5s).ok());
  ASSERT_TRUE(ProposeVia(leader, "with-4").ok());
  auto want = Values(5);
  want.push_back("with-4");
  ASSERT_TRUE(Converged({1, 2, 3, 4}, want));
  EXPECT_EQ(members_[leader].node->GetStatus().conf_state.voters.size(), 4u);

  // Remove a follower; the group of three keeps committing without it.
  uint64_t victim = leader == 1 ? 2 : 1;
  consensus::ConfChange rm;
  rm.changes.push_back({consensus::ConfChangeType::kRemoveNode, NodeId(victim)});
  ASSERT_TRUE(members_[leader].node->ProposeConfChange(rm, 5s).ok());
  StopMember(victim);
  members_.erase(victim);
  ASSERT_TRUE(ProposeVia(leader, "without").ok());

  // The membership survives a restart although the state machine (in memory here) and
  // the snapshot know nothing of it.
  StopMember(4);
  StartMember(4, /*join=*/true);
  auto cs = members_[4].node->GetStatus().conf_state;
  std::vector<NodeId> voters = cs.voters;
  std::sort(voters.begin(), voters.end());
  std::vector<NodeId> expect;
  for (uint64_t id = 1; id <= 4; ++id)
    if (id != victim) expect.push_back(NodeId(id));
  EXPECT_EQ(voters, expect);
  want.push_back("without");
  std::vector<uint64_t> live;
  for (auto& [id, m] : members_) live.push_back(id);
  ASSERT_TRUE(Converged(live, want));
}

TEST_F(RaftNodeTest, ReadBarrierNeedsAQuorum) {
  ASSERT_TRUE(ProposeVia(1, "x").ok());
  uint64_t leader = WaitLeader(1);
  ASSERT_NE(leader, 0u);
  EXPECT_TRUE(members_[leader].node->ReadBarrier(2s).ok());
  // Cut the leader off: it cannot confirm its leadership any more.
  for (uint64_t id = 1; id <= 3; ++id)
    if (id != leader) StopMember(id);
  Status s = members_[leader].node->ReadBarrier(300ms);
  EXPECT_FALSE(s.ok());
}

// Holds every member's Raft loop at the start of its next iteration until destroyed.
class LoopBlocker {
 public:
  LoopBlocker()
      : fp_("raft_node.intake", [st = st_](uint64_t) {
          std::unique_lock lock(st->mu);
          st->blocked = true;
          st->cv.notify_all();
          st->cv.wait(lock, [&] { return st->released; });
        }) {}
  ~LoopBlocker() {
    std::lock_guard lock(st_->mu);
    st_->released = true;
    st_->cv.notify_all();
  }
  bool WaitBlocked() {
    std::unique_lock lock(st_->mu);
    return st_->cv.wait_for(lock, 5s, [&] { return st_->blocked; });
  }

 private:
  // Shared with the action, which a loop may still be leaving when this object goes.
  struct State {
    std::mutex mu;
    std::condition_variable cv;
    bool blocked = false;
    bool released = false;
  };
  const std::shared_ptr<State> st_ = std::make_shared<State>();
  failpoint::Scoped fp_;
};

// A leader of three needs its loop for a barrier (a ReadIndex round)...
TEST_F(RaftNodeTest, ReadBarrierOfALeaderOfThreeWaitsForItsLoop) {
  ASSERT_TRUE(ProposeVia(1, "x").ok());
  const uint64_t leader = WaitLeader(1);
  ASSERT_NE(leader, 0u);
  ASSERT_TRUE(members_[leader].node->ReadBarrier(2s).ok());
  {
    LoopBlocker blocker;
    ASSERT_TRUE(blocker.WaitBlocked());
    EXPECT_EQ(members_[leader].node->ReadBarrier(200ms).code(), StatusCode::kDeadlineExceeded);
  }
  EXPECT_TRUE(members_[leader].node->ReadBarrier(2s).ok());
}

// ...while the only voter of its group answers at once.
class SoloLeaderTest : public RaftNodeTest {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("gojodb-solo-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    voters_ = {NodeId(1)};
    StartMember(1);
  }
};

TEST_F(SoloLeaderTest, ReadBarrierAnswersWithoutTheLoop) {
  ASSERT_TRUE(ProposeVia(1, "x").ok());
  ASSERT_TRUE(members_[1].node->ReadBarrier(2s).ok());
  LoopBlocker blocker;
  ASSERT_TRUE(blocker.WaitBlocked());
  EXPECT_TRUE(members_[1].node->ReadBarrier(200ms).ok());
}

// Once a second voter is in, leadership needs confirming again: with that voter down,
// no barrier passes.
TEST_F(SoloLeaderTest, ASecondVoterEndsTheQuickAnswer) {
  ASSERT_TRUE(ProposeVia(1, "x").ok());
  ASSERT_TRUE(members_[1].node->ReadBarrier(2s).ok());
  consensus::ConfChange add;
  add.changes.push_back({consensus::ConfChangeType::kAddNode, NodeId(2)});
  ASSERT_TRUE(members_[1].node->ProposeConfChange(add, 5s).ok());
  EXPECT_FALSE(members_[1].node->ReadBarrier(300ms).ok());
}

class LeaseReadTest : public RaftNodeTest {
 protected:
  // Restarts every member with lease reads `on` and 20 ms ticks; returns the leader.
  uint64_t Restart(bool on) {
    for (auto& [id, m] : members_) StopMember(id);
    members_.clear();
    lease_reads_ = on;
    tick_interval_ = 20ms;
    for (uint64_t id = 1; id <= 3; ++id) StartMember(id);
    if (!ProposeVia(1, "x").ok()) return 0;
    return WaitLeader(1);
  }
};

// Under a lease the leader answers read barriers without a heartbeat round; with
// ReadIndex every batch of barriers costs one.
TEST_F(LeaseReadTest, LeaseReadsNeedNoHeartbeatRound) {
  for (bool lease : {false, true}) {
    SCOPED_TRACE(lease ? "lease reads" : "ReadIndex");
    const uint64_t leader = Restart(lease);
    ASSERT_NE(leader, 0u);
    // The leader's first barrier may come before it holds a lease (it has heard no
    // acknowledged heartbeat yet), so it may take a round.
    ASSERT_TRUE(members_[leader].node->ReadBarrier(2s).ok());
    std::this_thread::sleep_for(100ms);
    const uint64_t before = read_rounds_.load();
    int served = 0;
    for (int i = 0; i < 100; ++i) served += members_[leader].node->ReadBarrier(2s).ok() ? 1 : 0;
    const uint64_t heartbeats = read_rounds_.load() - before;
    EXPECT_EQ(served, 100);
    if (lease) {
      // A lease voided meanwhile (the loop was late for a tick on a busy machine) sends
      // the barriers of that moment through a round; the others need none.
      EXPECT_LT(heartbeats, 100u);
    } else {
      EXPECT_GE(heartbeats, 200u);  // a round, one heartbeat per follower, per barrier
    }
  }
}

// A leader cut off from its followers serves no read once its lease has run out.
TEST_F(LeaseReadTest, ACutOffLeaderStopsServingWhenItsLeaseEnds) {
  const uint64_t leader = Restart(true);
  ASSERT_NE(leader, 0u);
  ASSERT_TRUE(members_[leader].node->ReadBarrier(2s).ok());
  for (uint64_t id = 1; id <= 3; ++id)
    if (id != leader) net_.Detach(NodeId(id));
  net_.Detach(NodeId(leader));  // nothing reaches it either
  // The lease is under one election timeout (10 ticks of 20 ms); wait for two.
  std::this_thread::sleep_for(400ms);
  EXPECT_FALSE(members_[leader].node->ReadBarrier(300ms).ok());
}

}  // namespace
}  // namespace gojodb::replication
