// ControllerLink: a storage node's connection to the controller group. Any member
// answers (followers forward to the leader); a call that finds a member unreachable or
// without a leader moves on to the next address.
//
// ControllerTso: the node's TimestampOracle, backed by the controller's TSO. It takes
// timestamps in batches; AdvancePast drops a cached batch that is not above `ts`, so the
// next timestamp comes fresh from the controller (greater than every one handed out
// anywhere before).
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/mvcc/timestamp_oracle.h"
#include "gojodb/v1/controller.grpc.pb.h"
#include "internal/status.h"

namespace gojodb::storage_node {

class ControllerLink {
 public:
  ControllerLink(std::vector<std::string> addrs, std::chrono::milliseconds timeout);

  Result<v1::RegisterNodeResponse> RegisterNode(const v1::RegisterNodeRequest& req);
  Result<v1::HeartbeatResponse> Heartbeat(const v1::HeartbeatRequest& req);
  Result<v1::GetTimestampsResponse> GetTimestamps(uint32_t count);
  Result<v1::GetShardMapResponse> GetShardMap(uint64_t known_version, uint32_t wait_ms);
  Result<uint64_t> AllocateShardId();
  Result<v1::Settings> GetSettings();

 private:
  template <typename Req, typename Resp, typename Method>
  Result<Resp> Call(Method method, const Req& req, std::chrono::milliseconds timeout);

  std::vector<std::unique_ptr<v1::Controller::Stub>> stubs_;
  std::vector<std::string> addrs_;
  const std::chrono::milliseconds timeout_;
  std::mutex mu_;
  size_t current_ = 0;  // GUARDED_BY(mu_): the member that answered last
};

class ControllerTso final : public mvcc::TimestampOracle {
 public:
  // Takes `batch` timestamps per call to the controller. A batch only lowers the cost
  // of a write: a write whose timestamp a fence or a newer leader overtook is proposed
  // again after AdvancePast, which drops the batch. A batch older than `max_age` is
  // dropped too, so that a version's timestamp is never far behind the time it was
  // written (the GC's TTL counts from it).
  // The controller in this process, when there is one (the standalone server's): count
  // → the first of `count` fresh timestamps. Batches come from it directly, and from
  // the link only when it fails (not its group's leader, say).
  using LocalSource = std::function<Result<uint64_t>(uint32_t count)>;

  explicit ControllerTso(ControllerLink* link, uint32_t batch = 1024,
                         std::chrono::milliseconds max_age = std::chrono::milliseconds(1000),
                         LocalSource local = nullptr)
      : link_(link), batch_(batch), max_age_(max_age), local_(std::move(local)) {}
  Result<mvcc::Timestamp> Next() override;
  mvcc::Timestamp Last() const override;
  Status AdvancePast(mvcc::Timestamp ts) override;
  // A timestamp handed out after the call began: from a batch the controller gave after
  // it began (another caller's, if one was asked for meanwhile), else a new one.
  Result<mvcc::Timestamp> NextFresh() override;

 private:
  // Replaces the cached batch with a new one from the controller. REQUIRES: mu_ held.
  Status Refill(std::chrono::steady_clock::time_point now);

  ControllerLink* const link_;
  const uint32_t batch_;
  const std::chrono::milliseconds max_age_;
  const LocalSource local_;
  mutable std::mutex mu_;
  std::chrono::steady_clock::time_point fetched_{};  // GUARDED_BY(mu_)
  uint64_t next_ = 0;                 // GUARDED_BY(mu_): the cached batch is [next_, end_)
  uint64_t end_ = 0;                  // GUARDED_BY(mu_)
  uint64_t last_ = 0;                 // GUARDED_BY(mu_)
  std::atomic<uint64_t> refills_{0};  // batches asked for (counted as the call starts)
  uint64_t batch_seq_ = 0;            // GUARDED_BY(mu_): the cached batch's number
};

}  // namespace gojodb::storage_node
