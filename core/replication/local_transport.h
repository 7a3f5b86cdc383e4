// An in-process network of RaftNodes for tests: Send hands each message straight to
// the addressed node; messages to detached nodes are dropped.
#pragma once

#include <map>
#include <mutex>

#include "core/replication/raft_node.h"

namespace gojodb::replication {

class LocalNetwork {
 public:
  void Attach(consensus::NodeId id, RaftNode* n) {
    std::lock_guard lock(mu_);
    nodes_[id.value()] = n;
  }
  void Detach(consensus::NodeId id) {
    std::lock_guard lock(mu_);
    nodes_.erase(id.value());
  }
  void Route(consensus::Message m) {
    std::lock_guard lock(mu_);
    auto it = nodes_.find(m.to.value());
    if (it != nodes_.end()) it->second->Deliver(std::move(m));  // else: dropped
  }

 private:
  std::mutex mu_;
  std::map<uint64_t, RaftNode*> nodes_;
};

class LocalTransport final : public Transport {
 public:
  explicit LocalTransport(LocalNetwork* net) : net_(net) {}
  void Send(std::vector<consensus::Message> messages) override {
    for (auto& m : messages) net_->Route(std::move(m));
  }

 private:
  LocalNetwork* net_;
};

}  // namespace gojodb::replication
