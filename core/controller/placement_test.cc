#include "core/controller/placement.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <ostream>
#include <string>
#include <vector>

namespace gojodb::controller {

// gtest prints ops readably on failure.
void PrintTo(const Op& op, std::ostream* os) { *os << OpToString(op); }

namespace {

constexpr Liveness kUp = Liveness::kUp;
constexpr Liveness kSuspect = Liveness::kSuspect;
constexpr Liveness kDead = Liveness::kDead;
constexpr AdminState kActive = AdminState::kActive;
constexpr AdminState kDecom = AdminState::kDecommissioning;
constexpr AdminState kRemoved = AdminState::kRemoved;

NodeView N(uint64_t id, std::string zone = "", Liveness l = kUp, AdminState a = kActive) {
  return NodeView{id, std::move(zone), l, a};
}
// A shard whose replicas are all voters.
ShardView S(uint64_t id, std::vector<uint64_t> voters, uint64_t leader = 0, bool busy = false) {
  ShardView s{id, {}, leader, busy};
  for (uint64_t n : voters) s.replicas.push_back(ReplicaView{n, false});
  return s;
}
Op Add(uint64_t shard, uint64_t node, std::string reason) {
  return Op{OpKind::kAddReplica, shard, node, std::move(reason)};
}
Op Remove(uint64_t shard, uint64_t node, std::string reason) {
  return Op{OpKind::kRemoveReplica, shard, node, std::move(reason)};
}
Op Transfer(uint64_t shard, uint64_t node, std::string reason) {
  return Op{OpKind::kTransferLeader, shard, node, std::move(reason)};
}

// ---------------------------------------------------------------- ChooseNodesForNewShard

struct NewShardCase {
  std::string name;
  std::vector<NodeView> nodes;
  std::vector<ShardView> shards;
  std::vector<uint64_t> want;
};

TEST(ChooseNodesForNewShard, PicksSpreadThenLoad) {
  const std::vector<NewShardCase> cases = {
      {"three nodes, three zones", {N(1, "a"), N(2, "b"), N(3, "c")}, {}, {1, 2, 3}},
      {"four nodes: least loaded, distinct zones",
       {N(1, "a"), N(2, "a"), N(3, "b"), N(4, "c")},
       {S(10, {1, 3}), S(11, {1, 4})},
       {2, 3, 4}},
      {"five nodes, three zones: one per zone, lowest id",
       {N(1, "a"), N(2, "a"), N(3, "b"), N(4, "b"), N(5, "c")},
       {},
       {1, 3, 5}},
      {"fewer zones than RF: reuse a zone, least loaded first",
       {N(1, "a"), N(2, "a"), N(3, "b")},
       {S(10, {1})},
       {2, 3, 1}},
      {"unlabelled nodes never count as a new zone", {N(1), N(2), N(3), N(4, "a")}, {}, {4, 1, 2}},
      {"dead, suspect, draining and removed nodes never chosen",
       {N(1, "a", kDead), N(2, "b", kSuspect), N(3, "c", kUp, kDecom), N(4, "d", kUp, kRemoved),
        N(5, "a"), N(6, "a"), N(7, "a")},
       {},
       {5, 6, 7}},
  };
  for (const NewShardCase& c : cases) {
    SCOPED_TRACE(c.name);
    auto got = ChooseNodesForNewShard(c.nodes, c.shards, 3);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(*got, c.want);
  }
}

TEST(ChooseNodesForNewShard, TooFewEligibleNodesIsFailedPrecondition) {
  const std::vector<NodeView> nodes = {N(1, "a"), N(2, "b"), N(3, "c", kDead), N(4, "d", kSuspect),
                                       N(5, "e", kUp, kDecom)};
  auto got = ChooseNodesForNewShard(nodes, {}, 3);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(ChooseNodesForNewShard(nodes, {}, 2).ok());
}

TEST(ChooseNodesForNewShard, NonPositiveReplicationFactorIsInvalidArgument) {
  auto got = ChooseNodesForNewShard({N(1)}, {}, 0);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), StatusCode::kInvalidArgument);
}

// ---------------------------------------------------------------- PlanRound

struct PlanCase {
  std::string name;
  std::vector<NodeView> nodes;
  std::vector<ShardView> shards;
  std::vector<Op> want;
  PlacementOptions options = {};
};

ShardView WithLearner(ShardView s, uint64_t node) {
  s.replicas.push_back(ReplicaView{node, true});
  return s;
}

const std::vector<NodeView> kThreeZones = {N(1, "a"), N(2, "b"), N(3, "c")};

TEST(PlanRound, Table) {
  const std::vector<PlanCase> cases = {
      {"balanced cluster: empty plan",
       kThreeZones,
       {S(1, {1, 2, 3}, 1), S(2, {1, 2, 3}, 2), S(3, {1, 2, 3}, 3)},
       {}},
      {"dead node: add on the node in its zone, spreading load within the round",
       {N(1, "a"), N(2, "b"), N(3, "c", kDead), N(4, "c"), N(5, "c")},
       {S(1, {1, 2, 3}, 1), S(2, {1, 2, 3}, 2)},
       {Add(1, 4, "repair"), Add(2, 5, "repair")}},
      {"suspect node: no repair",
       {N(1, "a"), N(2, "b"), N(3, "c", kSuspect), N(4, "c")},
       {S(1, {1, 2, 3}, 1)},
       {}},
      {"after the add: remove the dead replica",
       {N(1, "a"), N(2, "b"), N(3, "c", kDead), N(4, "c")},
       {S(1, {1, 2, 3, 4}, 1)},
       {Remove(1, 3, "repair")}},
      {"dead replica removed before a draining one",
       {N(1, "a"), N(2, "b"), N(3, "c", kDead), N(4, "c", kUp, kDecom), N(5, "c")},
       {S(1, {1, 2, 3, 4, 5}, 1)},
       {Remove(1, 3, "repair")}},
      {"replica on a removed node is dropped as a repair",
       {N(1, "a"), N(2, "b"), N(3, "c", kUp, kRemoved), N(4, "c")},
       {S(1, {1, 2, 3, 4}, 1)},
       {Remove(1, 3, "repair")}},
      {"lost and draining voters: reason is repair",
       {N(1, "a"), N(2, "b", kDead), N(3, "c", kUp, kDecom), N(4, "d"), N(5, "e")},
       {S(1, {1, 2, 3}, 1)},
       {Add(1, 4, "repair")}},
      {"learner does not count as a voter: its add is finished first",
       {N(1, "a"), N(2, "b"), N(3, "c"), N(4, "d")},
       {WithLearner(S(1, {1, 2}, 1), 3)},
       {Add(1, 3, "repair")}},
      {"a learner left by an add that ran out of time is added again",
       {N(1, "a"), N(2, "b"), N(3, "c"), N(4, "d")},
       {WithLearner(S(1, {1, 2, 3}, 1), 4)},
       {Add(1, 4, "finish-add")}},
      {"a learner on a suspect node waits",
       {N(1, "a"), N(2, "b"), N(3, "c"), N(4, "d", kSuspect)},
       {WithLearner(S(1, {1, 2, 3}, 1), 4)},
       {}},
      {"a learner on a dead node goes",
       {N(1, "a"), N(2, "b"), N(3, "c"), N(4, "d", kDead)},
       {WithLearner(S(1, {1, 2, 3}, 1), 4)},
       {Remove(1, 4, "repair")}},
      {"decommissioning: replacement first",
       {N(1, "a"), N(2, "b"), N(3, "c", kUp, kDecom), N(4, "c")},
       {S(1, {1, 2, 3}, 1)},
       {Add(1, 4, "decommission")}},
      {"decommissioning: then the drained replica goes",
       {N(1, "a"), N(2, "b"), N(3, "c", kUp, kDecom), N(4, "c")},
       {S(1, {1, 2, 3, 4}, 1)},
       {Remove(1, 3, "decommission")}},
      {"decommissioning leader: still short, so add first",
       {N(1, "a", kUp, kDecom), N(2, "b"), N(3, "c"), N(4, "a")},
       {S(1, {1, 2, 3}, 1)},
       {Add(1, 4, "decommission")}},
      {"decommissioning leader: transfer to fewest leaders before removal",
       {N(1, "a", kUp, kDecom), N(2, "b"), N(3, "c"), N(4, "a")},
       {S(1, {1, 2, 3, 4}, 1), S(2, {2, 3, 4}, 2)},
       {Transfer(1, 3, "decommission")}},
      {"decommissioning: transferred leader lets the removal proceed",
       {N(1, "a", kUp, kDecom), N(2, "b"), N(3, "c"), N(4, "a")},
       {S(1, {1, 2, 3, 4}, 3), S(2, {2, 3, 4}, 2)},
       {Remove(1, 1, "decommission")}},
      {"suspect leader: transfer away",
       {N(1, "a", kSuspect), N(2, "b"), N(3, "c")},
       {S(1, {1, 2, 3}, 1)},
       {Transfer(1, 2, "repair")}},
      {"dead leader: left to Raft's election",
       {N(1, "a", kDead), N(2, "b"), N(3, "c")},
       {S(1, {1, 2, 3}, 1)},
       {}},
      {"busy shard skipped",
       {N(1, "a"), N(2, "b"), N(3, "c", kDead), N(4, "c")},
       {S(1, {1, 2, 3}, 1, /*busy=*/true), S(2, {1, 2, 3}, 2)},
       {Add(2, 4, "repair")}},
      {"max_ops respected, shards by id",
       {N(1, "a"), N(2, "b"), N(3, "c", kDead), N(4, "c")},
       {S(4, {1, 2, 3}), S(2, {1, 2, 3}), S(3, {1, 2, 3}), S(1, {1, 2, 3})},
       {Add(1, 4, "repair"), Add(2, 4, "repair")},
       {.replication_factor = 3, .max_ops = 2, .max_balance_ops = 1}},
      {"no candidate: every live node hosts the shard",
       {N(1, "a"), N(2, "b"), N(3, "c", kDead)},
       {S(1, {1, 2, 3}, 1)},
       {}},
      {"excess: keep the leader, trim the most loaded (highest id on ties)",
       {N(1), N(2), N(3), N(4)},
       {S(1, {1, 2, 3, 4}, 4), S(2, {2, 3, 4}, 2)},
       {Remove(1, 3, "excess")}},
      {"excess: never the replica that alone covers a zone",
       {N(1, "a"), N(2, "b"), N(3, "c"), N(4, "c"), N(5, "d")},
       {S(1, {1, 2, 3, 4}, 1), S(2, {2, 5, 1}, 5)},
       {Remove(1, 4, "excess")}},
      {"balance: new empty node gets one move per round, not from a led shard",
       {N(1, "a"), N(2, "b"), N(3, "c"), N(4, "a")},
       {S(1, {1, 2, 3}, 1), S(2, {1, 2, 3}, 2), S(3, {1, 2, 3}, 3)},
       {Add(2, 4, "balance-replicas")}},
      {"balance: budget of two",
       {N(1, "a"), N(2, "b"), N(3, "c"), N(4, "a")},
       {S(1, {1, 2, 3}, 1), S(2, {1, 2, 3}, 2), S(3, {1, 2, 3}, 3)},
       {Add(2, 4, "balance-replicas"), Add(3, 4, "balance-replicas")},
       {.replication_factor = 3, .max_ops = 4, .max_balance_ops = 2}},
      {"balance: a shard the source leads gets a new leader first, not a replica",
       {N(1, "a"), N(2, "b"), N(3, "c"), N(4, "d")},
       {S(1, {1, 2, 3}, 1), S(2, {1, 2, 3}, 1), S(3, {1, 2, 4}, 2), S(4, {1, 3, 4}, 3)},
       {Transfer(1, 2, "balance-replicas")}},
      {"balance: never narrows the zone spread",
       {N(1, "a"), N(2, "b"), N(3, "c"), N(4, "a")},
       {S(1, {1, 2, 3}, 1), S(2, {2, 3, 4}, 2), S(3, {1, 2, 3}, 3)},
       {}},
      {"balance: repairs first",
       {N(1, "a"), N(2, "b"), N(3, "c"), N(4, "a"), N(5, "b", kDead)},
       {S(1, {1, 2, 3}, 1), S(2, {1, 2, 3}, 2), S(3, {1, 2, 3}, 3), S(4, {1, 3, 5}, 1)},
       {Add(4, 2, "repair")}},
      {"balance: waits for a busy shard that still needs repair",
       {N(1, "a"), N(2, "b"), N(3, "c"), N(4, "a"), N(5, "b", kDead)},
       {S(1, {1, 2, 3}, 1), S(2, {1, 2, 3}, 2), S(3, {1, 2, 3}, 3),
        S(4, {1, 3, 5}, 1, /*busy=*/true)},
       {}},
      {"leader balance: all leaders on node 1",
       kThreeZones,
       {S(1, {1, 2, 3}, 1), S(2, {1, 2, 3}, 1), S(3, {1, 2, 3}, 1)},
       {Transfer(1, 2, "balance-leaders")}},
      {"leader balance: budget of two spreads to both",
       kThreeZones,
       {S(1, {1, 2, 3}, 1), S(2, {1, 2, 3}, 1), S(3, {1, 2, 3}, 1)},
       {Transfer(1, 2, "balance-leaders"), Transfer(2, 3, "balance-leaders")},
       {.replication_factor = 3, .max_ops = 4, .max_balance_ops = 2}},
      {"leader balance: a difference of one is balanced",
       kThreeZones,
       {S(1, {1, 2, 3}, 1), S(2, {1, 2, 3}, 1), S(3, {1, 2, 3}, 2), S(4, {1, 2, 3}, 3)},
       {}},
      {"max_ops of zero: nothing",
       {N(1, "a"), N(2, "b"), N(3, "c", kDead), N(4, "c")},
       {S(1, {1, 2, 3}, 1)},
       {},
       {.replication_factor = 3, .max_ops = 0, .max_balance_ops = 1}},
  };
  for (const PlanCase& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(PlanRound(c.nodes, c.shards, c.options), c.want);
  }
}

TEST(PlanRound, DeterministicRegardlessOfInputOrder) {
  std::vector<NodeView> nodes = {N(1, "a"), N(2, "b"), N(3, "c", kDead),
                                 N(4, "c"), N(5, "a"), N(6, "b")};
  std::vector<ShardView> shards = {S(1, {1, 2, 3}, 1), S(2, {2, 3, 5}, 2), S(3, {3, 4, 6}, 3),
                                   S(4, {1, 4, 6}, 4), S(5, {3, 5, 6}, 5)};
  const std::vector<Op> first = PlanRound(nodes, shards, {});
  EXPECT_EQ(first.size(), 4u);  // four shards lose a replica; max_ops caps at four
  EXPECT_EQ(PlanRound(nodes, shards, {}), first);
  std::reverse(nodes.begin(), nodes.end());
  std::reverse(shards.begin(), shards.end());
  EXPECT_EQ(PlanRound(nodes, shards, {}), first);
}

// Applies ops as if each completed before the next round.
void ApplyOps(const std::vector<Op>& ops, std::vector<ShardView>& shards) {
  for (const Op& op : ops) {
    auto s = std::find_if(shards.begin(), shards.end(),
                          [&](const ShardView& v) { return v.id == op.shard; });
    ASSERT_NE(s, shards.end());
    switch (op.kind) {
      case OpKind::kAddReplica:
        s->replicas.push_back(ReplicaView{op.node, false});
        break;
      case OpKind::kRemoveReplica:
        std::erase_if(s->replicas, [&](const ReplicaView& r) { return r.node == op.node; });
        break;
      case OpKind::kTransferLeader:
        s->leader = op.node;
        break;
    }
  }
}

// Runs rounds to a fixed point; fails if it takes more than `max_rounds`.
std::vector<ShardView> Converge(const std::vector<NodeView>& nodes, std::vector<ShardView> shards,
                                int max_rounds) {
  for (int round = 0; round < max_rounds; ++round) {
    const std::vector<Op> ops = PlanRound(nodes, shards, {});
    if (ops.empty()) return shards;
    ApplyOps(ops, shards);
  }
  ADD_FAILURE() << "no fixed point after " << max_rounds << " rounds";
  return shards;
}

std::map<uint64_t, int> Hosted(const std::vector<ShardView>& shards) {
  std::map<uint64_t, int> hosted;
  for (const ShardView& s : shards) {
    for (const ReplicaView& r : s.replicas) ++hosted[r.node];
  }
  return hosted;
}

TEST(PlanRound, DecommissionDrainsNodeCompletely) {
  const std::vector<NodeView> nodes = {N(1, "a", kUp, kDecom), N(2, "b"), N(3, "c"), N(4, "a")};
  const std::vector<ShardView> shards = {S(1, {1, 2, 3}, 1), S(2, {1, 2, 3}, 2),
                                         S(3, {1, 2, 3}, 1)};
  const std::vector<ShardView> out = Converge(nodes, shards, 20);
  for (const ShardView& s : out) {
    SCOPED_TRACE(s.id);
    EXPECT_EQ(s.replicas.size(), 3u);
    EXPECT_NE(s.leader, 1u);
  }
  EXPECT_EQ(Hosted(out).count(1), 0u);
}

TEST(PlanRound, NewNodeFillsUpUntilBalanced) {
  const std::vector<NodeView> nodes = {N(1), N(2), N(3), N(4)};
  std::vector<ShardView> shards;
  for (uint64_t id = 1; id <= 8; ++id) shards.push_back(S(id, {1, 2, 3}, 1 + id % 3));
  const std::vector<ShardView> out = Converge(nodes, shards, 40);
  const std::map<uint64_t, int> hosted = Hosted(out);
  ASSERT_EQ(hosted.size(), 4u);
  int lo = 1 << 30, hi = 0;
  for (const auto& [node, n] : hosted) lo = std::min(lo, n), hi = std::max(hi, n);
  EXPECT_LE(hi - lo, 1);
  for (const ShardView& s : out) EXPECT_EQ(s.replicas.size(), 3u);
}

// The cluster the fault test ended in once: the only heavy node leads every shard the
// new node lacks. Adding there had the excess rule trim the new replica each round.
TEST(PlanRound, AHeavyNodeLeadingTheCandidatesStillGivesUpAReplica) {
  const std::vector<NodeView> nodes = {N(1, "a"), N(2, "b"), N(3, "c"), N(4, "d")};
  const std::vector<ShardView> shards = {S(1, {1, 2, 3}, 1), S(2, {1, 2, 3}, 1), S(3, {1, 2, 4}, 2),
                                         S(4, {1, 3, 4}, 3)};
  const std::vector<ShardView> out = Converge(nodes, shards, 20);
  const std::map<uint64_t, int> hosted = Hosted(out);
  int lo = 1 << 30, hi = 0;
  for (const auto& [node, n] : hosted) lo = std::min(lo, n), hi = std::max(hi, n);
  EXPECT_LE(hi - lo, 1);
  for (const ShardView& s : out) EXPECT_EQ(s.replicas.size(), 3u);
}

}  // namespace
}  // namespace gojodb::controller
