// A StateMachine that records every applied payload in order, in memory (rebuilt by
// replaying the log after a restart, or restored from a snapshot). For tests and tools.
#pragma once

#include <mutex>
#include <string>
#include <vector>

#include "core/mvcc/key_codec.h"
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
  // Snapshot: each item as u32 length + bytes.
  Result<std::string> Snapshot() override {
    std::lock_guard lock(mu_);
    std::string out;
    for (const auto& item : items_) {
      mvcc::AppendUint32(&out, static_cast<uint32_t>(item.size()));
      out += item;
    }
    return out;
  }
  Status Restore(consensus::LogIndex index, std::string_view data) override {
    std::vector<std::string> items;
    while (!data.empty()) {
      if (data.size() < 4) return Status::Corruption("list snapshot is truncated");
      uint32_t n = mvcc::ReadUint32(data);
      if (data.size() - 4 < n) return Status::Corruption("list snapshot is truncated");
      items.emplace_back(data.substr(4, n));
      data.remove_prefix(4 + n);
    }
    std::lock_guard lock(mu_);
    items_ = std::move(items);
    applied_ = index;
    return Status::OK();
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
