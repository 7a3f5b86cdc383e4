// A StateMachine that records every applied payload in order, in memory (rebuilt by
// replaying the log after a restart). For tests and tools.
#pragma once

#include <mutex>
#include <string>
#include <vector>

#include "core/replication/raft_node.h"

namespace gojodb::replication {

class ListStateMachine final : public StateMachine {
 public:
  Status Apply(consensus::LogIndex index, std::string_view data) override {
    std::lock_guard lock(mu_);
    if (index <= applied_) return Status::Internal("entry applied twice");
    applied_ = index;
    items_.emplace_back(data);
    return Status::OK();
  }
  consensus::LogIndex Applied() const override {
    std::lock_guard lock(mu_);
    return applied_;
  }
  std::vector<std::string> Items() const {
    std::lock_guard lock(mu_);
    return items_;
  }

 private:
  mutable std::mutex mu_;
  consensus::LogIndex applied_;
  std::vector<std::string> items_;
};

}  // namespace gojodb::replication
