// Placement planner: a pure function from a snapshot of the cluster (nodes, shards) to
// the membership operations the controller should issue next.
//
// The planner keeps no state and does no I/O, so the controller can call it every tick
// and tests can assert exact plans. Every round is deterministic for the same input:
// shards are visited by id and nodes are compared by id. A round emits at most one op
// per shard, because the controller runs one membership change per Raft group at a time
// (a second one would be rejected or, worse, race the first).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "internal/status.h"

namespace gojodb::controller {

// What the failure detector says about a node. Suspect is "missed some heartbeats":
// repairing on suspicion would churn data on every network blip, so only dead counts.
enum class Liveness { kUp, kSuspect, kDead };
std::string_view LivenessName(Liveness l);  // "up", "suspect", "dead"

// What the operator asked for. Decommissioning nodes are drained; removed ones are gone.
enum class AdminState { kActive, kDecommissioning, kRemoved };

struct NodeView {
  uint64_t id = 0;   // 0 is reserved for "none"; such nodes are ignored
  std::string zone;  // "" = no zone label; never counts as a distinct zone
  Liveness liveness = Liveness::kUp;
  AdminState admin = AdminState::kActive;
};

struct ReplicaView {
  uint64_t node = 0;
  bool learner = false;
};

struct ShardView {
  uint64_t id = 0;
  std::vector<ReplicaView> replicas;
  uint64_t leader = 0;  // 0 = unknown
  bool busy = false;    // an operation is already in flight for this shard
};

enum class OpKind { kAddReplica, kRemoveReplica, kTransferLeader };

struct Op {
  OpKind kind;
  uint64_t shard = 0;
  uint64_t node = 0;   // add: target node; remove: node to remove from; transfer: new leader
  std::string reason;  // "repair", "decommission", "balance-replicas", "balance-leaders", "excess"
  bool operator==(const Op&) const = default;
};

// "add(shard=7, node=3, repair)": for logs and test failure messages.
std::string OpToString(const Op& op);

struct PlacementOptions {
  int replication_factor = 3;
  int max_ops = 4;          // per round (rate limit)
  int max_balance_ops = 1;  // of which at most this many are balancing moves (replica or leader)
};

// Chooses `replication_factor` nodes for a brand-new shard. Only up + active nodes are
// eligible. Picks greedily: a node in a zone not yet used first, then the node hosting
// the fewest replicas (counted over `shards`, learners included), then the lowest id.
// Returns the chosen ids in pick order.
// Errors: INVALID_ARGUMENT if replication_factor < 1; FAILED_PRECONDITION if fewer
// than replication_factor nodes are eligible (a shard must never start under-replicated).
Result<std::vector<uint64_t>> ChooseNodesForNewShard(const std::vector<NodeView>& nodes,
                                                     const std::vector<ShardView>& shards,
                                                     int replication_factor);

// One planning round: the operations to issue now, in issue order.
//
// Per shard (skipping busy ones), the first rule that applies wins:
//   1. fewer healthy voters than RF -> add a replica ("repair" / "decommission");
//   2. >= RF healthy voters plus unhealthy replicas -> remove one, dead before
//      decommissioning; > RF healthy voters -> remove one ("excess");
//   3. leader on a suspect or decommissioning node -> transfer it to a healthy voter.
// Only when that pass emitted nothing and no busy shard still needs repair, up to
// max_balance_ops balancing moves follow: replica moves (an add; rule 2 trims the
// source later) and then leader transfers. A healthy replica is a voter on a known node
// that is up or suspect and active. Removals never drop a shard below RF healthy voters.
std::vector<Op> PlanRound(const std::vector<NodeView>& nodes, const std::vector<ShardView>& shards,
                          const PlacementOptions& options);

}  // namespace gojodb::controller
