// ReadOnly: ReadIndex requests waiting for a quorum of heartbeat acks (the "safe"
// read path, §6.4 of the Raft thesis).
#pragma once

#include <deque>
#include <map>
#include <string>
#include <vector>

#include "core/consensus/messages.h"

namespace gojodb::consensus {

enum class ReadOnlyOption : uint8_t {
  // Confirms leadership with a heartbeat round per batch of reads.
  kSafe,
  // Serves reads under the leader lease when one is held (needs check_quorum), and
  // falls back to kSafe otherwise. See docs/architecture/consensus.md for the clock
  // assumption.
  kLeaseBased,
};

struct ReadIndexStatus {
  Message req;     // the original MsgReadIndex
  LogIndex index;  // the commit index when it arrived
  std::map<NodeId, bool> acks;
};

class ReadOnly {
 public:
  // Registers a request with context req.context at commit index `index`. A repeated
  // context is ignored.
  void AddRequest(LogIndex index, const Message& req);
  // Records a heartbeat ack for `context`; returns the acks so far (nullptr if the
  // context is unknown).
  const std::map<NodeId, bool>* RecvAck(NodeId id, const std::string& context);
  // Releases the request with `context` and every request queued before it.
  std::vector<ReadIndexStatus> Advance(const std::string& context);
  // Context of the newest pending request, or empty.
  std::string LastPendingRequestContext() const;
  size_t pending() const { return queue_.size(); }

 private:
  std::map<std::string, ReadIndexStatus> pending_;
  std::deque<std::string> queue_;
};

}  // namespace gojodb::consensus
