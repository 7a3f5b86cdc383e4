// NodeBatcher: gathers the requests that wait for one storage node into ShardKv.Batch
// calls. A request is sent at once when fewer than `max_in_flight` calls to the node
// are out; otherwise it waits, and when a call comes back, everything waiting goes out
// together in the next one (natural batching: no timer, so a lone request is never
// held back). Under load, one call then carries many requests, which saves the node a
// call's worth of work per request (a gRPC call, a handler thread wake-up, a separate
// wait for the Raft loop) and the client as much.
//
// Each request's answer is its own: the status its unary call would have ended with
// (code, message, details), or the call's failure for every request it carried.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <string_view>

#include "api/grpc/shard_client.h"
#include "internal/status.h"

namespace gojodb::gateway {

class NodeBatcher {
 public:
  using Clock = std::chrono::steady_clock;
  struct Options {
    int max_in_flight = 1;        // calls out to the node at once
    int max_items = 256;          // requests per call (the node takes up to 1024)
    size_t max_bytes = 4u << 20;  // and their size; a larger request goes alone
  };
  NodeBatcher(std::shared_ptr<rpc::ShardClient> client, Options options)
      : client_(std::move(client)), options_(options) {}
  explicit NodeBatcher(std::shared_ptr<rpc::ShardClient> client)
      : NodeBatcher(std::move(client), Options()) {}

  // Sends `item` and waits for its answer until `deadline`. On OK, `*out` holds the
  // item's result, whose own code may still be an error (rpc::StatusOf). An error here
  // is the call's: UNAVAILABLE with reason NOT_SENT when the deadline came before a
  // call was free (nothing was sent: safe to resend), or the gRPC call's failure as
  // the client returned it (for a write, its outcome is then as unknown as a failed
  // unary call's). UNIMPLEMENTED: the node has no Batch method.
  Status Call(const v1::ShardBatchItem& item, Clock::time_point deadline,
              v1::ShardBatchResult* out);

  static constexpr std::string_view kReasonNotSent = "NOT_SENT";

  // Calls sent and requests they carried, since the start.
  uint64_t calls() const;
  uint64_t items() const;

 private:
  struct Pending;
  // Sends the front of the queue as one call; `lock` is held on entry and exit.
  void SendFront(std::unique_lock<std::mutex>& lock);

  const std::shared_ptr<rpc::ShardClient> client_;
  const Options options_;
  mutable std::mutex mu_;
  std::deque<Pending*> queue_;  // GUARDED_BY(mu_): waiting, not yet sent
  int in_flight_ = 0;           // GUARDED_BY(mu_)
  uint64_t calls_ = 0;          // GUARDED_BY(mu_)
  uint64_t items_ = 0;          // GUARDED_BY(mu_)
};

}  // namespace gojodb::gateway
