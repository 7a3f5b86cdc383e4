#include "core/consensus/read_only.h"

namespace gojodb::consensus {

void ReadOnly::AddRequest(LogIndex index, const Message& req) {
  if (pending_.count(req.context)) return;
  pending_.emplace(req.context, ReadIndexStatus{req, index, {}});
  queue_.push_back(req.context);
}

const std::map<NodeId, bool>* ReadOnly::RecvAck(NodeId id, const std::string& context) {
  auto it = pending_.find(context);
  if (it == pending_.end()) return nullptr;
  it->second.acks[id] = true;
  return &it->second.acks;
}

std::vector<ReadIndexStatus> ReadOnly::Advance(const std::string& context) {
  std::vector<ReadIndexStatus> out;
  if (!pending_.count(context)) return out;
  // A heartbeat ack for one request also confirms every request sent before it.
  while (!queue_.empty()) {
    std::string ctx = queue_.front();
    queue_.pop_front();
    auto it = pending_.find(ctx);
    out.push_back(std::move(it->second));
    pending_.erase(it);
    if (ctx == context) break;
  }
  return out;
}

std::string ReadOnly::LastPendingRequestContext() const {
  return queue_.empty() ? std::string() : queue_.back();
}

}  // namespace gojodb::consensus
