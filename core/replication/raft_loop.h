// RaftLoop: the thread that drives every Raft group (RaftNode) of a node.
//
// One iteration: each group takes its queued messages, proposals and requests (and a
// tick when one is due); every group's Ready is staged into ONE WriteBatch, written
// with ONE fsync (when any of them must be synced); only then does each group send its
// messages, apply its committed entries and advance. So a node with thousands of groups
// pays one fsync per iteration, not one per group, and no message leaves before what it
// depends on is durable. Groups share the loop's tick; between ticks an iteration visits
// only the groups that were notified, so idle groups cost nothing.
//
// Thread-safety: Notify and stats may be called from any thread; attaching and
// detaching are done by RaftNode (never from the loop thread itself).
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "core/storage_engine/engine.h"

namespace gojodb::replication {

class RaftNode;

class RaftLoop {
 public:
  // `engine` holds every attached group's log; not owned, must outlive the loop.
  RaftLoop(storage::Engine* engine, std::chrono::milliseconds tick_interval);
  ~RaftLoop();  // REQUIRES: every group detached (RaftNode's destructor does it)

  storage::Engine* engine() const { return engine_; }
  std::chrono::milliseconds tick_interval() const { return tick_interval_; }

  struct Stats {
    uint64_t iterations = 0;
    uint64_t log_writes = 0;  // batches written for Readies
    uint64_t synced_writes = 0;
    uint64_t readies = 0;  // group Readies with something to persist, in those writes
  };
  Stats stats() const;

  // `node` (attached to this loop) has work.
  void Notify(RaftNode* node);

 private:
  friend class RaftNode;
  void Attach(RaftNode* node);
  // Returns once the loop no longer touches `node`.
  void Detach(RaftNode* node);
  void Run();

  storage::Engine* const engine_;
  const std::chrono::milliseconds tick_interval_;
  mutable std::mutex mu_;
  std::condition_variable work_cv_;
  std::condition_variable idle_cv_;
  std::vector<RaftNode*> nodes_;     // GUARDED_BY(mu_)
  std::vector<RaftNode*> notified_;  // GUARDED_BY(mu_): have work since the last iteration
  bool busy_ = false;                // GUARDED_BY(mu_): an iteration holds node pointers
  bool stopping_ = false;            // GUARDED_BY(mu_)
  Stats stats_;                      // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace gojodb::replication
