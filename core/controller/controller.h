// Controller: the control plane's logic, over one Raft group (RaftNode) and its
// replicated state (ControllerStateMachine). The servers in cmd/controller adapt it to
// gRPC and HTTP; it knows neither. See docs/architecture/controller.md.
//
// Leader-only requests on a follower fail with NotLeader(): UNAVAILABLE with the
// detail "leader_id" (0 when unknown), which the server layer turns into a forward.
//
// Thread-safety: every public method may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "core/controller/gc.h"
#include "core/controller/placement.h"
#include "core/controller/state_machine.h"
#include "core/replication/raft_node.h"
#include "internal/clock.h"

namespace gojodb::controller {

struct ControllerOptions {
  uint64_t id = 0;
  std::string grpc_addr;
  std::string http_addr;
  std::chrono::milliseconds request_timeout{5000};
  // How far ahead of use the leader commits the TSO limit.
  uint64_t tso_window_ms = 3000;
  std::chrono::milliseconds placement_interval{1000};
  std::chrono::milliseconds operation_timeout{30000};
  // How long AddController waits for a new member to catch up before promoting it.
  std::chrono::milliseconds catch_up_timeout{10000};
  // A new leader knows no router's hold: it waits this long (at least the longest hold
  // a router asks for) before it moves the GC target.
  std::chrono::milliseconds gc_hold_grace{10000};
};

// What a storage node reports with each heartbeat.
struct NodeStats {
  uint64_t capacity_bytes = 0;
  uint64_t used_bytes = 0;
  uint64_t shard_count = 0;
  uint64_t leader_count = 0;
  double load = 0;  // requests per second, say; used for display only so far
};

// What the controller asks a storage node to do; carried by heartbeat answers.
struct ShardCommand {
  enum class Kind { kCreate, kAddReplica, kRemoveReplica, kTransferLeader };
  Kind kind = Kind::kCreate;
  ShardRecord shard;  // the descriptor as the controller knows it
  uint64_t node = 0;  // add/remove: that replica's node; transfer: the new leader
  std::string reason;
};
std::string_view ShardCommandKindName(ShardCommand::Kind k);

struct NodeInfo {
  NodeRecord record;
  Liveness liveness = Liveness::kUp;
  NodeStats stats;
  uint64_t last_heartbeat_ms = 0;  // 0: none seen by this leader
};

struct MemberInfo {
  Member member;
  std::string role;       // "leader", "follower", "learner"
  bool reachable = true;  // the leader heard from it within an election timeout
};

struct ClusterView {
  std::vector<MemberInfo> controllers;
  uint64_t leader = 0;
  uint64_t term = 0;
  std::vector<NodeInfo> nodes;
  std::vector<ShardRecord> shards;
  uint64_t map_version = 0;
};

class Controller {
 public:
  // Pointers are not owned and must outlive the controller. Starts the background
  // thread (member record, placement rounds, TSO limit pre-extension).
  Controller(ControllerOptions options, replication::RaftNode* node, ControllerStateMachine* sm,
             Clock* clock);
  ~Controller();

  static Status NotLeader(uint64_t leader_id);
  // The leader id a NotLeader status names; 0 for any other status.
  static uint64_t LeaderHint(const Status& s);
  uint64_t id() const { return options_.id; }
  bool IsLeader() const;
  uint64_t LeaderId() const;

  // --- Storage nodes ---
  Result<NodeRecord> RegisterNode(const NodeRecord& node);
  // `gc_resolved`: the node's shards resolved below their GC fences; `reclaimed`: the
  // dropped ids whose rows the node deleted from shards it leads; `gc` (if set)
  // receives the GC target and safe point, and the ids whose rows may go, for the node.
  Result<std::vector<ShardCommand>> Heartbeat(uint64_t node, const NodeStats& stats,
                                              const std::vector<ShardRecord>& reports,
                                              const std::vector<GcResolvedReport>& gc_resolved = {},
                                              const std::vector<ReclaimedReport>& reclaimed = {},
                                              GcPoints* gc = nullptr);
  Status DecommissionNode(uint64_t node);

  // New shard ids for splits: `count` consecutive ids; returns the first. Leader only.
  Result<uint64_t> AllocateShardIds(uint32_t count);

  // --- Timestamps ---
  // `count` consecutive timestamps; returns the first. Leader only.
  Result<uint64_t> AllocateTimestamps(uint32_t count);

  // --- GC (gc.h) ---
  // A router's hold: its open transactions started at min_start_ts or later (0: it has
  // none; the hold is dropped). The hold lapses after ttl_ms (1..gc_hold_grace) unless
  // renewed.
  // Leader only.
  Result<GcPoints> HoldGc(const std::string& holder, uint64_t min_start_ts, uint64_t ttl_ms);
  // The leader's current target and the replicated safe point. Leader only.
  Result<GcPoints> Gc();

  // --- Shard map and catalog (served from this member's applied state) ---
  ClusterState WaitForChange(uint64_t known, bool catalog, std::chrono::milliseconds wait) const {
    return sm_->WaitForChange(known, catalog, wait);
  }
  ClusterState State() const { return sm_->State(); }
  Result<TenantRecord> CreateTenant(const std::string& name);
  Result<CollectionRecord> CreateCollection(const std::string& tenant, const std::string& name,
                                            const std::string& schema_json,
                                            const std::vector<IndexDef>& indexes);
  Status DropCollection(const std::string& tenant, const std::string& name);
  // Index builds and drops (cmd::AddIndex, UpdateIndex, RemoveIndex); each answers the
  // collection as the command left it.
  Result<CollectionRecord> AddIndex(const std::string& tenant, const std::string& collection,
                                    const IndexDef& index);
  Result<CollectionRecord> UpdateIndex(const std::string& tenant, const std::string& collection,
                                       const IndexDef& index);
  Result<CollectionRecord> RemoveIndex(const std::string& tenant, const std::string& collection,
                                       const std::string& index, uint32_t id);
  // OK once this member's state holds every command committed before the call
  // (a linearizable read of State() follows).
  Status ReadBarrier(std::chrono::milliseconds timeout);
  Result<CollectionRecord> FindCollection(const std::string& tenant, const std::string& name) const;
  Result<Settings> UpdateSettings(const std::string& patch_json);

  // --- Controller membership ---
  Status AddController(uint64_t id, const std::string& grpc_addr);
  Status RemoveController(uint64_t id);

  // Members, liveness and shards, as the leader sees them. Leader only.
  Result<ClusterView> View();

 private:
  struct Tso {
    uint64_t term = 0;  // 0: not in office
    uint64_t last = 0;  // the last timestamp handed out
    uint64_t limit_ms = 0;
  };
  struct Pending {
    ShardCommand command;
    uint64_t actor = 0;  // the node that must carry it out
    uint64_t deadline_ms = 0;
    uint64_t delivered_ms = 0;  // 0: not yet
  };

  // Proposes a command (leader only) and decodes its outcome.
  Status ProposeCommand(const std::string& command, std::string* result = nullptr);
  Status TakeOffice(uint64_t term);  // REQUIRES: tso_mu_ held
  void Loop();
  void LeaderRound();
  void ResetLeaderStateIfNewTerm(uint64_t term);  // REQUIRES: mu_ held
  // Moves the GC target and proposes a newer safe point when the shards allow it.
  void GcRound(const ClusterState& st, uint64_t now_ms);
  Liveness LivenessOf(uint64_t node, uint64_t now_ms, const Settings& s) const;  // mu_ held

  const ControllerOptions options_;
  replication::RaftNode* const node_;
  ControllerStateMachine* const sm_;
  Clock* const clock_;

  std::mutex tso_mu_;
  Tso tso_;  // GUARDED_BY(tso_mu_)

  mutable std::mutex mu_;
  uint64_t leader_term_ = 0;                          // GUARDED_BY(mu_): term of live_/pending_
  uint64_t term_start_ms_ = 0;                        // GUARDED_BY(mu_)
  std::map<uint64_t, NodeInfo> live_;                 // GUARDED_BY(mu_): heartbeats seen
  std::map<uint64_t, Pending> pending_;               // GUARDED_BY(mu_): by shard id
  std::vector<Pending> pending_creates_;              // GUARDED_BY(mu_)
  std::map<std::string, GcHold> gc_holds_;            // GUARDED_BY(mu_)
  std::map<uint64_t, GcResolvedReport> gc_resolved_;  // GUARDED_BY(mu_): by shard
  std::set<ReclaimedReport> reclaimed_;               // GUARDED_BY(mu_)
  uint64_t gc_target_ = 0;                            // GUARDED_BY(mu_)

  std::mutex loop_mu_;
  std::condition_variable loop_cv_;
  bool stopping_ = false;  // GUARDED_BY(loop_mu_)
  std::thread thread_;
};

}  // namespace gojodb::controller
