// ControllerStateMachine: the controller's replicated state on the node's engine.
//
// Each record of ClusterState lives under "ctl/<record key>" in the `meta` column
// family; a command's records and the applied index are written in one batch, so a
// restart loads exactly the state as of the applied index and the Raft log replays the
// rest. Snapshots are EncodeState. Readers get consistent copies; watchers of the
// shard map or the catalog wait for their version to move.
//
// Thread-safety: Apply/Restore/Snapshot come from the Raft node's thread; every other
// method may be called from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>

#include "core/controller/state.h"
#include "core/replication/raft_node.h"
#include "core/storage_engine/engine.h"

namespace gojodb::controller {

class ControllerStateMachine final : public replication::StateMachine {
 public:
  // Loads the state from `engine` (not owned; must outlive this), or the initial state
  // of a new cluster.
  static Result<std::unique_ptr<ControllerStateMachine>> Open(storage::Engine* engine);

  Status Apply(consensus::LogIndex index, std::string_view data) override;
  // `result` receives EncodeOutcome of the command.
  Status ApplyCommand(consensus::LogIndex index, std::string_view data,
                      std::string* result) override;
  consensus::LogIndex Applied() const override;
  Result<std::string> Snapshot() override;
  Status Restore(consensus::LogIndex index, std::string_view data) override;

  ClusterState State() const;
  // Returns the state once its map_version (or catalog_version when `catalog`) is past
  // `known`, or when `timeout` passes, whichever is first.
  ClusterState WaitForChange(uint64_t known, bool catalog, std::chrono::milliseconds timeout) const;

 private:
  explicit ControllerStateMachine(storage::Engine* engine) : engine_(engine) {}
  Status Persist(consensus::LogIndex index, const std::vector<std::string>& keys,
                 const ClusterState& st);

  storage::Engine* const engine_;
  mutable std::mutex mu_;
  mutable std::condition_variable changed_;
  ClusterState state_;           // GUARDED_BY(mu_)
  consensus::LogIndex applied_;  // GUARDED_BY(mu_)
};

}  // namespace gojodb::controller
