#include "core/replication/raft_loop.h"

#include <algorithm>

#include "core/replication/raft_node.h"

namespace gojodb::replication {

RaftLoop::RaftLoop(storage::Engine* engine, std::chrono::milliseconds tick_interval)
    : engine_(engine), tick_interval_(tick_interval) {
  thread_ = std::thread([this] { Run(); });
}

RaftLoop::~RaftLoop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  thread_.join();
}

RaftLoop::Stats RaftLoop::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

void RaftLoop::Notify(RaftNode* node) {
  {
    std::lock_guard lock(mu_);
    notified_.push_back(node);
  }
  work_cv_.notify_one();
}

void RaftLoop::Attach(RaftNode* node) {
  {
    std::lock_guard lock(mu_);
    nodes_.push_back(node);
    notified_.push_back(node);
  }
  work_cv_.notify_one();
}

void RaftLoop::Detach(RaftNode* node) {
  std::unique_lock lock(mu_);
  std::erase(nodes_, node);
  std::erase(notified_, node);
  idle_cv_.wait(lock, [&] { return !busy_; });
}

void RaftLoop::Run() {
  auto next_tick = std::chrono::steady_clock::now() + tick_interval_;
  while (true) {
    std::vector<RaftNode*> nodes;
    bool tick = false;
    {
      std::unique_lock lock(mu_);
      work_cv_.wait_until(lock, next_tick, [&] { return stopping_ || !notified_.empty(); });
      if (stopping_) return;
      const auto now = std::chrono::steady_clock::now();
      tick = now >= next_tick;
      if (tick) {
        next_tick += tick_interval_;
        // Fell behind: do not burst. Ticks then run slower than real time, which the
        // groups notice and allow for (RaftNode::Intake voids leases).
        if (next_tick < now) next_tick = now + tick_interval_;
        nodes = nodes_;  // every group ticks
      } else {
        // Only the groups with work; each once.
        std::sort(notified_.begin(), notified_.end());
        notified_.erase(std::unique(notified_.begin(), notified_.end()), notified_.end());
        nodes = std::move(notified_);
      }
      notified_.clear();
      busy_ = true;
      ++stats_.iterations;
    }
    // 1. Intake: messages, proposals, requests, the tick.
    std::vector<RaftNode*> live;
    for (RaftNode* n : nodes) {
      if (n->Intake(tick)) live.push_back(n);
    }
    // 2. Readies, until none is left: stage all, one write, then finish each.
    while (true) {
      storage::WriteBatch batch;
      bool sync = false;
      std::vector<RaftNode*> staged;
      uint64_t persisting = 0;  // Readies with something to write
      for (RaftNode* n : live) {
        if (n->failed() || !n->HasReady()) continue;
        const size_t before = batch.Count();
        Status s = n->StageReady(&batch, &sync);
        if (!s.ok()) {
          n->Fail(s);
          continue;
        }
        persisting += batch.Count() > before ? 1 : 0;
        staged.push_back(n);
      }
      if (staged.empty()) break;
      if (batch.Count() > 0) {
        Status w = engine_->Write({.sync = sync}, batch);
        {
          std::lock_guard lock(mu_);
          ++stats_.log_writes;
          stats_.synced_writes += sync ? 1 : 0;
          stats_.readies += persisting;
        }
        if (!w.ok()) {
          // The log's state is unknown for every group in the batch: they stop.
          for (RaftNode* n : staged) n->Fail(w, /*discard_staged=*/true);
          continue;
        }
      }
      for (RaftNode* n : staged) {
        Status s = n->FinishReady();
        if (!s.ok()) n->Fail(s);
      }
    }
    // 3. Snapshots and status.
    for (RaftNode* n : live) {
      if (n->failed()) continue;
      Status s = n->AfterIteration();
      if (!s.ok()) n->Fail(s);
    }
    {
      std::lock_guard lock(mu_);
      busy_ = false;
    }
    idle_cv_.notify_all();
  }
}

}  // namespace gojodb::replication
