// An in-process network of RaftNodes for tests: Send hands each message straight to
// the addressed node of the same group; messages to detached nodes are dropped.
#pragma once

#include <map>
#include <mutex>

#include "core/replication/raft_node.h"

namespace gojodb::replication {

class LocalNetwork {
 public:
  void Attach(consensus::NodeId id, RaftNode* n, uint64_t group = 0) {
    std::lock_guard lock(mu_);
    nodes_[{group, id.value()}] = n;
  }
  void Detach(consensus::NodeId id, uint64_t group = 0) {
    std::lock_guard lock(mu_);
    nodes_.erase({group, id.value()});
  }
  void Route(consensus::Message m, uint64_t group = 0) {
    std::lock_guard lock(mu_);
    auto it = nodes_.find({group, m.to.value()});
    if (it != nodes_.end()) it->second->Deliver(std::move(m));  // else: dropped
  }

 private:
  std::mutex mu_;
  std::map<std::pair<uint64_t, uint64_t>, RaftNode*> nodes_;  // (group, node)
};

class LocalTransport final : public Transport {
 public:
  explicit LocalTransport(LocalNetwork* net, uint64_t group = 0) : net_(net), group_(group) {}
  void Send(std::vector<consensus::Message> messages) override {
    for (auto& m : messages) net_->Route(std::move(m), group_);
  }

 private:
  LocalNetwork* net_;
  uint64_t group_;
};

}  // namespace gojodb::replication
