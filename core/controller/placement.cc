#include "core/controller/placement.h"

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <tuple>

namespace gojodb::controller {
namespace {

// Why a replica should leave its shard.
enum class Badness {
  kFine,      // healthy voter, or a learner on a healthy node (left alone)
  kGone,      // node dead, removed or unknown: the data there is lost or unreachable
  kDraining,  // node decommissioning: still serving, so it goes only after a replacement
};

// The cluster as one round sees it. The counters move as ops are chosen, so later
// choices in the same round see the effect of earlier ones (no pile-up on one node).
class Cluster {
 public:
  Cluster(const std::vector<NodeView>& nodes, const std::vector<ShardView>& shards) {
    for (const NodeView& n : nodes) {
      if (n.id != 0) nodes_.emplace(n.id, &n);  // 0 means "none"; first entry wins
    }
    for (const ShardView& s : shards) {
      for (const ReplicaView& r : s.replicas) ++hosted_[r.node];
      if (s.leader != 0) ++leaders_[s.leader];
    }
  }

  const std::map<uint64_t, const NodeView*>& nodes() const { return nodes_; }
  const NodeView* Find(uint64_t id) const {
    auto it = nodes_.find(id);
    return it == nodes_.end() ? nullptr : it->second;
  }
  // May receive replicas and leadership: suspect nodes may be about to die.
  bool Eligible(uint64_t id) const {
    const NodeView* n = Find(id);
    return n && n->liveness == Liveness::kUp && n->admin == AdminState::kActive;
  }
  // Counts toward RF. Suspect still counts: repairing on suspicion would churn data.
  bool Healthy(const ReplicaView& r) const {
    const NodeView* n = Find(r.node);
    return !r.learner && n && n->liveness != Liveness::kDead && n->admin == AdminState::kActive;
  }
  Badness BadnessOf(const ReplicaView& r) const {
    const NodeView* n = Find(r.node);
    if (!n || n->liveness == Liveness::kDead || n->admin == AdminState::kRemoved) {
      return Badness::kGone;
    }
    return n->admin == AdminState::kDecommissioning ? Badness::kDraining : Badness::kFine;
  }
  int Hosted(uint64_t id) const { return Count(hosted_, id); }
  int Leaders(uint64_t id) const { return Count(leaders_, id); }

  void Apply(const Op& op, const ShardView& s) {
    switch (op.kind) {
      case OpKind::kAddReplica:
        ++hosted_[op.node];
        break;
      case OpKind::kRemoveReplica:
        --hosted_[op.node];
        break;
      case OpKind::kTransferLeader:
        if (s.leader != 0) --leaders_[s.leader];
        ++leaders_[op.node];
        break;
    }
  }

 private:
  static int Count(const std::map<uint64_t, int>& m, uint64_t id) {
    auto it = m.find(id);
    return it == m.end() ? 0 : it->second;
  }

  std::map<uint64_t, const NodeView*> nodes_;
  std::map<uint64_t, int> hosted_;   // replicas per node, learners included (they hold data)
  std::map<uint64_t, int> leaders_;  // shards led per node
};

bool Hosts(const ShardView& s, uint64_t node) {
  return std::any_of(s.replicas.begin(), s.replicas.end(),
                     [&](const ReplicaView& r) { return r.node == node; });
}

int HealthyVoters(const Cluster& c, const ShardView& s) {
  return static_cast<int>(std::count_if(s.replicas.begin(), s.replicas.end(),
                                        [&](const ReplicaView& r) { return c.Healthy(r); }));
}

// Labelled zone -> number of healthy voters of `s` in it. "" is not a zone.
std::map<std::string, int> HealthyZones(const Cluster& c, const ShardView& s) {
  std::map<std::string, int> zones;
  for (const ReplicaView& r : s.replicas) {
    if (c.Healthy(r) && !c.Find(r.node)->zone.empty()) ++zones[c.Find(r.node)->zone];
  }
  return zones;
}

// The leader sits on a node that still answers but should not lead: suspect (may die)
// or not active (being drained or removed). A dead leader needs no transfer: Raft
// elects a new one on its own, and nobody would accept the request anyway.
bool LeaderNeedsMove(const Cluster& c, const ShardView& s) {
  const NodeView* n = s.leader == 0 ? nullptr : c.Find(s.leader);
  return n && n->liveness != Liveness::kDead &&
         (n->liveness == Liveness::kSuspect || n->admin != AdminState::kActive);
}

// Best eligible node not hosting `s`: a new zone first, then least loaded, then lowest
// id. 0 if none.
uint64_t PickTarget(const Cluster& c, const ShardView& s) {
  const std::map<std::string, int> zones = HealthyZones(c, s);
  uint64_t best = 0;
  std::tuple<int, int, uint64_t> best_key;
  for (const auto& [id, n] : c.nodes()) {
    if (!c.Eligible(id) || Hosts(s, id)) continue;
    const bool new_zone = !n->zone.empty() && !zones.contains(n->zone);
    auto key = std::make_tuple(new_zone ? 0 : 1, c.Hosted(id), id);
    if (best == 0 || key < best_key) best = id, best_key = key;
  }
  return best;
}

// "decommission" only when draining is the whole story; any lost voter makes it a repair.
std::string AddReason(const Cluster& c, const ShardView& s) {
  bool draining = false;
  for (const ReplicaView& r : s.replicas) {
    if (r.learner) continue;
    if (c.BadnessOf(r) == Badness::kGone) return "repair";
    draining |= c.BadnessOf(r) == Badness::kDraining;
  }
  return draining ? "decommission" : "repair";
}

// Drops a gone replica before a draining one (lowest node id among equals). A draining
// leader stays until rule 3 has moved leadership off it.
std::optional<Op> RemoveUnhealthy(const Cluster& c, const ShardView& s) {
  std::optional<std::pair<Badness, uint64_t>> best;
  for (const ReplicaView& r : s.replicas) {
    const Badness b = c.BadnessOf(r);
    if (b == Badness::kFine) continue;
    if (r.node == s.leader && LeaderNeedsMove(c, s)) continue;
    auto key = std::make_pair(b, r.node);
    if (!best || key < *best) best = key;
  }
  if (!best) return std::nullopt;
  return Op{OpKind::kRemoveReplica, s.id, best->second,
            best->first == Badness::kGone ? "repair" : "decommission"};
}

// Called with more than RF healthy voters, so a non-leader always exists. Keeps the
// leader, then zone spread, then up over suspect nodes; then trims the most loaded node
// (highest id on ties), which is where a balancing move took its source from.
std::optional<Op> RemoveExcess(const Cluster& c, const ShardView& s) {
  const std::map<std::string, int> zones = HealthyZones(c, s);
  std::optional<std::tuple<bool, bool, bool, int, uint64_t>> best;
  uint64_t victim = 0;
  for (const ReplicaView& r : s.replicas) {
    if (!c.Healthy(r)) continue;
    const NodeView* n = c.Find(r.node);
    const bool hurts_spread = !n->zone.empty() && zones.at(n->zone) == 1;
    auto key = std::make_tuple(r.node == s.leader, hurts_spread, n->liveness == Liveness::kUp,
                               -c.Hosted(r.node), ~r.node);  // ~id: highest id sorts first
    if (!best || key < *best) best = key, victim = r.node;
  }
  if (!best) return std::nullopt;
  return Op{OpKind::kRemoveReplica, s.id, victim, "excess"};
}

// Transfers leadership to the healthy voter on an eligible node leading the fewest
// shards (lowest id on ties).
std::optional<Op> MoveLeaderOffBadNode(const Cluster& c, const ShardView& s) {
  if (!LeaderNeedsMove(c, s)) return std::nullopt;
  uint64_t best = 0;
  for (const ReplicaView& r : s.replicas) {
    if (r.node == s.leader || !c.Healthy(r) || !c.Eligible(r.node)) continue;
    if (best == 0 ||
        std::make_pair(c.Leaders(r.node), r.node) < std::make_pair(c.Leaders(best), best)) {
      best = r.node;
    }
  }
  if (best == 0) return std::nullopt;
  const bool draining = c.Find(s.leader)->admin == AdminState::kDecommissioning;
  return Op{OpKind::kTransferLeader, s.id, best, draining ? "decommission" : "repair"};
}

// Rules 1-3 for one shard; the first that yields an op wins. Before them: a learner on
// an up, active node is an add that did not finish (the node had not caught up when
// the add's wait ran out), so the add is sent again; the node keeps what it received,
// and the storage node promotes it once it has caught up. Left alone, it would stay a
// learner for good, and its node would count it as hosted.
std::optional<Op> RepairOp(const Cluster& c, const ShardView& s, int rf) {
  const int healthy = HealthyVoters(c, s);
  for (const ReplicaView& r : s.replicas) {
    if (r.learner && c.Eligible(r.node)) {
      return Op{OpKind::kAddReplica, s.id, r.node, healthy < rf ? AddReason(c, s) : "finish-add"};
    }
  }
  if (healthy < rf) {
    if (uint64_t target = PickTarget(c, s)) {
      return Op{OpKind::kAddReplica, s.id, target, AddReason(c, s)};
    }
    // Nowhere to add (too few nodes): still worth moving a leader off a bad node.
  } else {
    if (auto op = RemoveUnhealthy(c, s)) return op;
    if (healthy > rf) {
      if (auto op = RemoveExcess(c, s)) return op;
    }
  }
  return MoveLeaderOffBadNode(c, s);
}

// Work a busy shard still owes; its in-flight op is probably a repair, so balancing
// waits for it rather than competing for the same nodes.
bool NeedsRepair(const Cluster& c, const ShardView& s, int rf) {
  if (HealthyVoters(c, s) < rf || LeaderNeedsMove(c, s)) return true;
  return std::any_of(s.replicas.begin(), s.replicas.end(),
                     [&](const ReplicaView& r) { return c.BadnessOf(r) != Badness::kFine; });
}

std::vector<uint64_t> EligibleNodes(const Cluster& c) {
  std::vector<uint64_t> ids;
  for (const auto& [id, n] : c.nodes()) {
    if (c.Eligible(id)) ids.push_back(id);
  }
  return ids;
}

// Adds a replica on the least-loaded node for a shard on a node at least two replicas
// heavier; the excess rule trims the heavy side next round. Only shards at exactly RF
// healthy voters qualify (others are the repair rules' business), shards not led by the
// source first (excess removal keeps leaders, so the move would miss the source: for a
// shard the source leads, leadership moves off it first), and never a move that lowers
// the number of zones the shard spans.
std::optional<Op> BalanceReplicas(const Cluster& c, const std::vector<const ShardView*>& order,
                                  const std::set<uint64_t>& touched, int rf) {
  std::vector<uint64_t> ids = EligibleNodes(c);
  if (ids.size() < 2) return std::nullopt;
  std::sort(ids.begin(), ids.end(), [&](uint64_t a, uint64_t b) {
    return std::make_pair(-c.Hosted(a), a) < std::make_pair(-c.Hosted(b), b);
  });
  const uint64_t target = *std::min_element(ids.begin(), ids.end(), [&](uint64_t a, uint64_t b) {
    return std::make_pair(c.Hosted(a), a) < std::make_pair(c.Hosted(b), b);
  });
  const std::string& target_zone = c.Find(target)->zone;
  for (uint64_t source : ids) {
    if (c.Hosted(source) - c.Hosted(target) <= 1) break;
    for (bool allow_leader : {false, true}) {
      for (const ShardView* s : order) {
        if (s->busy || touched.contains(s->id) || Hosts(*s, target)) continue;
        if (HealthyVoters(c, *s) != rf || (!allow_leader && s->leader == source)) continue;
        const bool source_voter =
            std::any_of(s->replicas.begin(), s->replicas.end(),
                        [&](const ReplicaView& r) { return r.node == source && c.Healthy(r); });
        if (!source_voter) continue;
        std::map<std::string, int> zones = HealthyZones(c, *s);
        const size_t before = zones.size();
        const std::string& source_zone = c.Find(source)->zone;
        if (!source_zone.empty() && --zones[source_zone] == 0) zones.erase(source_zone);
        if (!target_zone.empty()) ++zones[target_zone];
        if (zones.size() < before) continue;
        if (s->leader == source) {
          // The excess rule keeps leaders: a replica added now would be the one trimmed
          // next round, again and again. Leadership moves off the source first.
          uint64_t to = 0;
          for (const ReplicaView& r : s->replicas) {
            if (r.node == source || r.learner || !c.Healthy(r) || !c.Eligible(r.node)) continue;
            if (to == 0 ||
                std::make_pair(c.Leaders(r.node), r.node) < std::make_pair(c.Leaders(to), to)) {
              to = r.node;
            }
          }
          if (to == 0) continue;
          return Op{OpKind::kTransferLeader, s->id, to, "balance-replicas"};
        }
        return Op{OpKind::kAddReplica, s->id, target, "balance-replicas"};
      }
    }
  }
  return std::nullopt;
}

// Moves one leadership from a node leading at least two more shards than the least
// busy voter-hosting node, to the shard's voter that leads the fewest.
std::optional<Op> BalanceLeaders(const Cluster& c, const std::vector<const ShardView*>& order,
                                 const std::set<uint64_t>& touched) {
  std::set<uint64_t> hosts_voters;
  for (const ShardView* s : order) {
    for (const ReplicaView& r : s->replicas) {
      if (c.Healthy(r) && c.Eligible(r.node)) hosts_voters.insert(r.node);
    }
  }
  if (hosts_voters.size() < 2) return std::nullopt;
  std::vector<uint64_t> ids(hosts_voters.begin(), hosts_voters.end());
  std::sort(ids.begin(), ids.end(), [&](uint64_t a, uint64_t b) {
    return std::make_pair(-c.Leaders(a), a) < std::make_pair(-c.Leaders(b), b);
  });
  const int min_leaders = c.Leaders(ids.back());
  for (uint64_t source : ids) {
    if (c.Leaders(source) - min_leaders <= 1) break;
    for (const ShardView* s : order) {
      if (s->leader != source || s->busy || touched.contains(s->id)) continue;
      uint64_t best = 0;
      for (const ReplicaView& r : s->replicas) {
        if (r.node == source || !c.Healthy(r) || !c.Eligible(r.node)) continue;
        if (best == 0 ||
            std::make_pair(c.Leaders(r.node), r.node) < std::make_pair(c.Leaders(best), best)) {
          best = r.node;
        }
      }
      if (best != 0 && c.Leaders(source) - c.Leaders(best) > 1) {
        return Op{OpKind::kTransferLeader, s->id, best, "balance-leaders"};
      }
    }
  }
  return std::nullopt;
}

}  // namespace

std::string OpToString(const Op& op) {
  const char* kind = op.kind == OpKind::kAddReplica      ? "add"
                     : op.kind == OpKind::kRemoveReplica ? "remove"
                                                         : "transfer";
  return std::string(kind) + "(shard=" + std::to_string(op.shard) +
         ", node=" + std::to_string(op.node) + ", " + op.reason + ")";
}

Result<std::vector<uint64_t>> ChooseNodesForNewShard(const std::vector<NodeView>& nodes,
                                                     const std::vector<ShardView>& shards,
                                                     int replication_factor) {
  if (replication_factor < 1) {
    return Status::InvalidArgument("replication factor must be at least 1, got " +
                                   std::to_string(replication_factor));
  }
  const Cluster c(nodes, shards);
  const size_t eligible = EligibleNodes(c).size();
  if (eligible < static_cast<size_t>(replication_factor)) {
    return Status::FailedPrecondition("need " + std::to_string(replication_factor) +
                                      " up and active nodes for a new shard, have " +
                                      std::to_string(eligible));
  }
  // Picking for a new shard is repeated repair of an empty one: reuse the same ranking.
  ShardView draft;
  std::vector<uint64_t> chosen;
  while (chosen.size() < static_cast<size_t>(replication_factor)) {
    const uint64_t id = PickTarget(c, draft);
    draft.replicas.push_back(ReplicaView{id, false});
    chosen.push_back(id);
  }
  return chosen;
}

std::vector<Op> PlanRound(const std::vector<NodeView>& nodes, const std::vector<ShardView>& shards,
                          const PlacementOptions& options) {
  std::vector<Op> ops;
  const int rf = options.replication_factor;
  const size_t max_ops = static_cast<size_t>(std::max(options.max_ops, 0));
  if (rf < 1 || max_ops == 0) return ops;

  Cluster c(nodes, shards);
  std::vector<const ShardView*> order;
  for (const ShardView& s : shards) order.push_back(&s);
  std::stable_sort(order.begin(), order.end(),
                   [](const ShardView* a, const ShardView* b) { return a->id < b->id; });

  std::set<uint64_t> touched;  // shards with an op this round: one membership change at a time
  bool repair_pending = false;
  for (const ShardView* s : order) {
    if (ops.size() >= max_ops) break;
    if (s->busy) {
      repair_pending |= NeedsRepair(c, *s, rf);
      continue;
    }
    if (touched.contains(s->id)) continue;  // duplicate id in the input
    if (auto op = RepairOp(c, *s, rf)) {
      c.Apply(*op, *s);
      touched.insert(s->id);
      ops.push_back(std::move(*op));
    }
  }
  // Repairs first: balancing while data is missing would compete for the same nodes.
  if (!ops.empty() || repair_pending) return ops;

  const size_t budget =
      std::min(max_ops, static_cast<size_t>(std::max(options.max_balance_ops, 0)));
  auto emit = [&](Op op) {
    auto it = std::find_if(order.begin(), order.end(),
                           [&](const ShardView* s) { return s->id == op.shard; });
    c.Apply(op, **it);  // balance ops name shards taken from `order`
    touched.insert(op.shard);
    ops.push_back(std::move(op));
  };
  while (ops.size() < budget) {
    auto op = BalanceReplicas(c, order, touched, rf);
    if (!op) break;
    emit(std::move(*op));
  }
  while (ops.size() < budget) {
    auto op = BalanceLeaders(c, order, touched);
    if (!op) break;
    emit(std::move(*op));
  }
  return ops;
}

std::string_view LivenessName(Liveness l) {
  switch (l) {
    case Liveness::kUp:
      return "up";
    case Liveness::kSuspect:
      return "suspect";
    case Liveness::kDead:
      return "dead";
  }
  return "unknown";
}

}  // namespace gojodb::controller
