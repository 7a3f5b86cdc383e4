#include "cmd/storage/controller_link.h"

#include <grpcpp/grpcpp.h>

#include "api/grpc/convert.h"

namespace gojodb::storage_node {

ControllerLink::ControllerLink(std::vector<std::string> addrs, std::chrono::milliseconds timeout)
    : addrs_(std::move(addrs)), timeout_(timeout) {
  for (const auto& a : addrs_) {
    stubs_.push_back(
        v1::Controller::NewStub(grpc::CreateChannel(a, grpc::InsecureChannelCredentials())));
  }
}

template <typename Req, typename Resp, typename Method>
Result<Resp> ControllerLink::Call(Method method, const Req& req,
                                  std::chrono::milliseconds timeout) {
  size_t start;
  {
    std::lock_guard lock(mu_);
    start = current_;
  }
  Status last = Status::Unavailable("no controller address");
  for (size_t i = 0; i < stubs_.size(); ++i) {
    const size_t at = (start + i) % stubs_.size();
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + timeout);
    Resp resp;
    grpc::Status gs = (stubs_[at].get()->*method)(&ctx, req, &resp);
    if (gs.ok()) {
      std::lock_guard lock(mu_);
      current_ = at;
      return resp;
    }
    last = rpc::FromGrpc(gs, &ctx).WithContext("controller " + addrs_[at]);
    // Another member may answer where this one could not; answers about the request
    // itself would be the same everywhere.
    if (gs.error_code() != grpc::StatusCode::UNAVAILABLE &&
        gs.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED) {
      return last;
    }
  }
  return last;
}

Result<v1::RegisterNodeResponse> ControllerLink::RegisterNode(const v1::RegisterNodeRequest& req) {
  return Call<v1::RegisterNodeRequest, v1::RegisterNodeResponse>(
      &v1::Controller::Stub::RegisterNode, req, timeout_);
}

Result<v1::HeartbeatResponse> ControllerLink::Heartbeat(const v1::HeartbeatRequest& req) {
  return Call<v1::HeartbeatRequest, v1::HeartbeatResponse>(&v1::Controller::Stub::Heartbeat, req,
                                                           timeout_);
}

Result<v1::GetTimestampsResponse> ControllerLink::GetTimestamps(uint32_t count) {
  v1::GetTimestampsRequest req;
  req.set_count(count);
  return Call<v1::GetTimestampsRequest, v1::GetTimestampsResponse>(
      &v1::Controller::Stub::GetTimestamps, req, timeout_);
}

Result<v1::GetShardMapResponse> ControllerLink::GetShardMap(uint64_t known_version,
                                                            uint32_t wait_ms) {
  v1::GetShardMapRequest req;
  req.set_known_version(known_version);
  req.set_wait_ms(wait_ms);
  return Call<v1::GetShardMapRequest, v1::GetShardMapResponse>(
      &v1::Controller::Stub::GetShardMap, req, timeout_ + std::chrono::milliseconds(wait_ms));
}

Result<uint64_t> ControllerLink::AllocateShardId() {
  v1::AllocateShardIdsRequest req;
  req.set_count(1);
  ASSIGN_OR_RETURN(auto r, (Call<v1::AllocateShardIdsRequest, v1::AllocateShardIdsResponse>(
                               &v1::Controller::Stub::AllocateShardIds, req, timeout_)));
  if (r.first() == 0) return Status::Internal("the controller allocated shard id 0");
  return r.first();
}

Result<v1::Settings> ControllerLink::GetSettings() {
  return Call<v1::GetSettingsRequest, v1::Settings>(&v1::Controller::Stub::GetSettings,
                                                    v1::GetSettingsRequest(), timeout_);
}

Status ControllerTso::Refill(std::chrono::steady_clock::time_point now) {
  // Numbered before the call: what it brings is fresh to anyone waiting now.
  const uint64_t seq = refills_.fetch_add(1) + 1;
  uint64_t first = 0;
  if (local_) {
    auto r = local_(batch_);
    if (r.ok()) first = *r;
  }
  uint64_t count = batch_;
  if (first == 0) {
    ASSIGN_OR_RETURN(auto r, link_->GetTimestamps(batch_));
    first = r.first();
    count = r.count();
  }
  if (count == 0 || first == 0) {
    return Status::Internal("the controller answered an empty timestamp batch");
  }
  next_ = first;
  end_ = first + count;
  fetched_ = now;
  batch_seq_ = seq;
  return Status::OK();
}

Result<mvcc::Timestamp> ControllerTso::Next() {
  std::lock_guard lock(mu_);
  const auto now = std::chrono::steady_clock::now();
  if (next_ >= end_ || now - fetched_ > max_age_) RETURN_IF_ERROR(Refill(now));
  last_ = next_++;
  return last_;
}

Result<mvcc::Timestamp> ControllerTso::NextFresh() {
  const uint64_t arrived = refills_.load();
  std::lock_guard lock(mu_);
  // A batch asked for after this call began holds timestamps handed out after it began:
  // concurrent callers share one controller call instead of taking one each.
  if (batch_seq_ <= arrived || next_ >= end_) {
    RETURN_IF_ERROR(Refill(std::chrono::steady_clock::now()));
  }
  last_ = next_++;
  return last_;
}

mvcc::Timestamp ControllerTso::Last() const {
  std::lock_guard lock(mu_);
  return last_;
}

Status ControllerTso::AdvancePast(mvcc::Timestamp ts) {
  std::lock_guard lock(mu_);
  if (next_ <= ts) next_ = end_;  // the next Next() fetches a fresh batch
  return Status::OK();
}

}  // namespace gojodb::storage_node
