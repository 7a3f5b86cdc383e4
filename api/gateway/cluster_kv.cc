#include "api/gateway/cluster_kv.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <random>

#include "api/gateway/call_util.h"
#include "api/grpc/convert.h"
#include "api/grpc/shard_convert.h"
#include "core/controller/state.h"
#include "core/mvcc/key_codec.h"
#include "core/mvcc/timestamp_oracle.h"
#include "core/sharding/shard_machine.h"
#include "core/sharding/store.h"
#include "internal/encoding.h"
#include "internal/failpoint.h"
#include "internal/fingerprint.h"
#include "internal/names.h"

namespace gojodb::gateway {
namespace {

using Steady = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr uint32_t kTenant = controller::kDefaultTenantId;
constexpr size_t kMaxRequestIdBytes = 256;
// Writes of at least this size skip the node's write batcher (CallNode).
constexpr size_t kAloneWriteBytes = 256u << 10;
constexpr const char* kDefaultCollection = "default";
// Longest single call to a controller member before the next one is asked.
constexpr auto kControllerCallTimeout = 3s;
// Descriptors learnt from storage nodes are kept until the controller's map has them,
// at most this long and this many.
constexpr auto kLearntTtl = std::chrono::seconds(60);
constexpr size_t kMaxLearnt = 4096;
// No call to a storage node starts with less time than this left.
constexpr auto kMinAttempt = 50ms;
// On-demand map fetches closer together than this are served by the last one.
constexpr auto kRefreshInterval = 50ms;

const std::string& OrDefault(const std::string& collection) {
  static const std::string kDefault = kDefaultCollection;
  return collection.empty() ? kDefault : collection;
}

Status TooLarge(std::string what, size_t size, size_t limit) {
  return Status::ResourceExhausted(what + " is " + std::to_string(size) + " bytes; the limit is " +
                                   std::to_string(limit))
      .WithDetail("reason", "TOO_LARGE");
}

Status CheckRequestId(const std::string& id) {
  if (id.size() > kMaxRequestIdBytes) {
    return Status::InvalidArgument("request id is longer than 256 bytes");
  }
  return Status::OK();
}

std::string_view DetailOf(const Status& s, std::string_view name) {
  for (const auto& [k, v] : s.details()) {
    if (k == name) return v;
  }
  return {};
}

// gRPC's own messages when a call could not reach the server at all: nothing was sent.
bool NeverSent(std::string_view message) {
  for (std::string_view m :
       {"failed to connect to all addresses", "Failed to connect to remote host",
        "Connection refused", "connections to all backends failing", "DNS resolution failed",
        "empty address list", "name resolution"}) {
    if (message.find(m) != std::string_view::npos) return true;
  }
  return false;
}

v1::ReadConsistency ToShard(kv::Consistency c) {
  switch (c) {
    case kv::Consistency::kSnapshot:
      return v1::READ_SNAPSHOT;
    case kv::Consistency::kStale:
      return v1::READ_STALE;
    default:
      return v1::READ_LINEARIZABLE;
  }
}

std::shared_ptr<grpc::Channel> NewChannel(const std::string& addr) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  // A node that restarts is found again quickly.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  return grpc::CreateCustomChannel(addr, grpc::InsecureChannelCredentials(), args);
}

}  // namespace

// --- Validation and fingerprints -----------------------------------------------------------

Result<size_t> PageLimit(size_t requested, const kv::Limits& limits) {
  const size_t limit = requested == 0 ? limits.default_scan_limit : requested;
  if (limit > limits.max_scan_limit) {
    return Status::InvalidArgument("limit " + std::to_string(limit) + " is above the maximum " +
                                   std::to_string(limits.max_scan_limit));
  }
  return limit;
}

Status ValidateKey(std::string_view key, const kv::Limits& limits) {
  if (key.empty()) return Status::InvalidArgument("key must not be empty");
  if (key.size() > limits.max_key_bytes) return TooLarge("key", key.size(), limits.max_key_bytes);
  return Status::OK();
}

Status ValidatePut(const kv::PutRequest& req, const kv::Limits& limits) {
  RETURN_IF_ERROR(ValidateKey(req.key, limits));
  if (req.value.size() > limits.max_value_bytes) {
    return TooLarge("value", req.value.size(), limits.max_value_bytes);
  }
  return CheckRequestId(req.request_id);
}

Status ValidateDelete(const kv::DeleteRequest& req, const kv::Limits& limits) {
  RETURN_IF_ERROR(ValidateKey(req.key, limits));
  return CheckRequestId(req.request_id);
}

Status ValidateBatch(const kv::BatchRequest& req, const kv::Limits& limits) {
  if (req.ops.empty()) return Status::InvalidArgument("a batch needs at least one op");
  if (req.ops.size() > limits.max_batch_ops) {
    return Status::InvalidArgument("a batch may hold at most " +
                                   std::to_string(limits.max_batch_ops) + " ops");
  }
  for (size_t i = 0; i < req.ops.size(); ++i) {
    const auto& op = req.ops[i];
    const std::string where = "ops[" + std::to_string(i) + "]";
    RETURN_IF_ERROR(ValidateKey(op.key, limits).WithContext(where));
    if (op.kind == kv::BatchOp::Kind::kPut && op.value.size() > limits.max_value_bytes) {
      return TooLarge(where + " value", op.value.size(), limits.max_value_bytes);
    }
  }
  return CheckRequestId(req.request_id);
}

uint64_t FingerprintPut(const kv::PutRequest& req) {
  Fingerprint fp;
  fp.Add("put");
  fp.Add(OrDefault(req.collection));
  fp.Add(req.key);
  fp.Add(req.value);
  fp.Add(req.if_version ? *req.if_version + 1 : 0);
  return fp.value();
}

uint64_t FingerprintDelete(const kv::DeleteRequest& req) {
  Fingerprint fp;
  fp.Add("delete");
  fp.Add(OrDefault(req.collection));
  fp.Add(req.key);
  fp.Add(req.if_version ? *req.if_version + 1 : 0);
  return fp.value();
}

uint64_t FingerprintBatch(const kv::BatchRequest& req) {
  Fingerprint fp;
  fp.Add("batch");
  for (const auto& op : req.ops) {
    const bool del = op.kind == kv::BatchOp::Kind::kDelete;
    fp.Add(del ? "delete" : "put");
    fp.Add(OrDefault(op.collection));
    fp.Add(op.key);
    fp.Add(op.value);
    fp.Add(op.if_version ? *op.if_version + 1 : 0);
  }
  return fp.value();
}

// --- Storage nodes' errors ----------------------------------------------------------------

NodeAnswer ClassifyNodeError(const Status& s) {
  NodeAnswer a;
  switch (s.code()) {
    case StatusCode::kOk:
      return a;
    case StatusCode::kDeadlineExceeded:
    case StatusCode::kCancelled:
      a.verdict = NodeVerdict::kUnknown;
      return a;
    case StatusCode::kUnavailable:
      break;
    default:
      return a;  // the operation's own outcome
  }
  const std::string_view reason = DetailOf(s, "reason");
  if (reason == sharding::kReasonNotLeader) {
    a.verdict = NodeVerdict::kNotLeader;
    const std::string leader(DetailOf(s, "leader"));
    a.leader = leader.empty() ? 0 : std::strtoull(leader.c_str(), nullptr, 10);
  } else if (reason == sharding::kReasonEpochNotMatch) {
    a.verdict = NodeVerdict::kEpochNotMatch;
    if (auto raw = Base64Decode(DetailOf(s, "descriptor")); raw.ok()) {
      if (auto d = sharding::DecodeDescriptor(*raw); d.ok()) a.descriptor = std::move(*d);
    }
    if (const std::string_view nd = DetailOf(s, "new_descriptor"); !nd.empty()) {
      if (auto raw = Base64Decode(nd); raw.ok()) {
        if (auto d = sharding::DecodeDescriptor(*raw); d.ok()) a.new_descriptor = std::move(*d);
      }
    }
  } else if (reason == sharding::kReasonShardNotFound) {
    a.verdict = NodeVerdict::kShardNotFound;
  } else if (!reason.empty()) {
    a.verdict = NodeVerdict::kBusy;  // SERVER_BUSY and reasons added later
  } else if (NeverSent(s.message())) {
    a.verdict = NodeVerdict::kUnreachable;
  } else {
    a.verdict = NodeVerdict::kUnknown;
  }
  return a;
}

bool WriteRetryable(NodeVerdict verdict, bool has_request_id) {
  switch (verdict) {
    case NodeVerdict::kOutcome:
      return false;
    case NodeVerdict::kUnknown:
      return has_request_id;
    default:
      return true;
  }
}

// --- ClusterKv --------------------------------------------------------------------------

namespace {
std::string NewHolderName() {
  std::mt19937_64 rng(std::random_device{}());
  char buf[40];
  std::snprintf(buf, sizeof(buf), "router-%016llx", static_cast<unsigned long long>(rng()));
  return buf;
}
}  // namespace

ClusterKv::ClusterKv(ClusterKvOptions options)
    : options_(std::move(options)),
      gc_holder_(NewHolderName()),
      txn_pool_(std::make_unique<ThreadPool>(2)),
      build_pool_(std::make_unique<ThreadPool>(2)) {}

Result<std::unique_ptr<ClusterKv>> ClusterKv::Start(ClusterKvOptions options) {
  if (options.controllers.empty()) {
    return Status::InvalidArgument("the gateway needs at least one controller address");
  }
  if (options.request_timeout <= 0ms) {
    return Status::InvalidArgument("the request timeout must be positive");
  }
  if (options.ingest_part_docs == 0) {
    return Status::InvalidArgument("a bulk part needs at least one document");
  }
  std::unique_ptr<ClusterKv> kv(new ClusterKv(std::move(options)));
  for (const auto& addr : kv->options_.controllers) {
    auto c = std::make_unique<ControllerConn>();
    c->addr = addr;
    c->channel = NewChannel(addr);
    c->controller = v1::Controller::NewStub(c->channel);
    c->catalog = v1::Catalog::NewStub(c->channel);
    c->admin = v1::Admin::NewStub(c->channel);
    kv->controllers_.push_back(std::move(c));
  }
  kv->poller_ = std::thread([p = kv.get()] { p->PollLoop(); });
  kv->gc_holder_thread_ = std::thread([p = kv.get()] { p->HoldLoop(); });
  return kv;
}

ClusterKv::~ClusterKv() {
  stopping_builds_ = true;
  build_pool_.reset();  // builds stop at their next page; the catalog keeps their progress
  txn_pool_.reset();    // finishes the secondary commits queued
  {
    std::lock_guard lock(poll_mu_);
    stopping_ = true;
    if (poll_ctx_) poll_ctx_->TryCancel();
  }
  poll_cv_.notify_all();
  if (poller_.joinable()) poller_.join();
  if (gc_holder_thread_.joinable()) gc_holder_thread_.join();
}

void ClusterKv::Backoff(int attempt, Clock::time_point deadline) {
  if (shutting_down_.load(std::memory_order_relaxed)) return;  // the caller stops next
  auto d = options_.backoff_min * (1 << std::min(attempt, 10));
  if (d > options_.backoff_max) d = options_.backoff_max;
  thread_local std::mt19937_64 rng(std::random_device{}());
  const auto ms = std::max<int64_t>(1, d.count());
  auto sleep = std::chrono::milliseconds(ms / 2 + static_cast<int64_t>(rng() % (ms / 2 + 1)));
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  if (left <= 0ms) return;
  std::this_thread::sleep_for(std::min(sleep, left));
}

Status ClusterKv::DeadlineError(const std::string& what, const Status& last) const {
  std::string msg =
      shutting_down_.load(std::memory_order_relaxed)
          ? what + ": the server is shutting down"
          : what + ": no answer within " + std::to_string(options_.request_timeout.count()) + " ms";
  if (!last.ok()) msg += " (last error: " + last.message() + ")";
  return Status::Unavailable(msg);
}

// --- Controller ---

Status ClusterKv::CallController(
    Clock::time_point deadline,
    const std::function<Status(ControllerConn&, grpc::ClientContext*)>& fn) {
  Status last = Status::Unavailable("no controller was asked");
  for (int round = 0;; ++round) {
    const size_t n = controllers_.size();
    const size_t start = preferred_controller_.load();
    for (size_t i = 0; i < n; ++i) {
      if (Expired(deadline)) return DeadlineError("controllers", last);
      const size_t idx = (start + i) % n;
      grpc::ClientContext ctx;
      ctx.set_deadline(ToSystem(std::min(deadline, Clock::now() + kControllerCallTimeout)));
      Status s = fn(*controllers_[idx], &ctx);
      if (s.code() != StatusCode::kUnavailable && s.code() != StatusCode::kDeadlineExceeded) {
        preferred_controller_ = idx;
        controller_answered_ = true;
        return s;
      }
      last = Status(s.code(), controllers_[idx]->addr + ": " + s.message());
    }
    if (Expired(deadline)) return DeadlineError("controllers", last);
    Backoff(round, deadline);
  }
}

void ClusterKv::InstallMap(const v1::GetShardMapResponse& resp) {
  std::vector<sharding::ShardRecord> shards;
  shards.reserve(resp.shards_size());
  for (const auto& d : resp.shards()) shards.push_back(rpc::FromProto(d));
  {
    std::lock_guard lock(nodes_mu_);
    for (const auto& n : resp.nodes()) {
      if (!n.grpc_addr().empty()) node_addrs_[n.id()] = n.grpc_addr();
    }
  }
  // Descriptors learnt from storage nodes that this map does not know yet (its version
  // may be newer because of other shards' changes).
  std::vector<sharding::ShardRecord> learnt;
  {
    std::lock_guard lock(learnt_mu_);
    const auto now = Clock::now();
    for (auto it = learnt_.begin(); it != learnt_.end();) {
      bool known = false;
      for (const auto& d : shards) {
        known = known || (d.id == it->first && d.epoch.version >= it->second.first.epoch.version);
      }
      if (known || now - it->second.second > kLearntTtl) {
        it = learnt_.erase(it);
      } else {
        learnt.push_back(it->second.first);
        ++it;
      }
    }
  }
  if (resp.version() > routes_.version() || routes_.size() == 0) {
    routes_.Reset(resp.version(), std::move(shards));
  } else {
    // The same map again: it restores shards forgotten after SHARD_NOT_FOUND without
    // undoing newer descriptors learnt from storage nodes. Its leader hints are no newer
    // than the ones storage nodes gave since, so they are left out.
    for (auto& d : shards) d.leader = 0;
    routes_.Update(shards);
  }
  if (!learnt.empty()) routes_.Update(learnt);
  ++map_fetches_;
}

void ClusterKv::Learn(const sharding::ShardRecord& d) {
  routes_.Update({d});
  std::lock_guard lock(learnt_mu_);
  auto it = learnt_.find(d.id);
  if (it == learnt_.end() || it->second.first.epoch.version < d.epoch.version ||
      (it->second.first.epoch.version == d.epoch.version &&
       it->second.first.epoch.conf_ver <= d.epoch.conf_ver)) {
    learnt_[d.id] = {d, Clock::now()};
  }
  if (learnt_.size() > kMaxLearnt) learnt_.erase(learnt_.begin());
}

void ClusterKv::PollLoop() {
  int failures = 0;
  while (true) {
    auto ctx = std::make_shared<grpc::ClientContext>();
    const uint64_t known = routes_.size() == 0 ? 0 : routes_.version();
    const auto wait = known == 0 ? 0ms : options_.map_wait;
    ctx->set_deadline(std::chrono::system_clock::now() + wait + 5s);
    {
      std::lock_guard lock(poll_mu_);
      if (stopping_) return;
      poll_ctx_ = ctx;
    }
    const size_t idx = preferred_controller_.load() % controllers_.size();
    v1::GetShardMapRequest req;
    req.set_known_version(known);
    req.set_wait_ms(static_cast<uint32_t>(wait.count()));
    v1::GetShardMapResponse resp;
    const auto started = Clock::now();
    grpc::Status gs = controllers_[idx]->controller->GetShardMap(ctx.get(), req, &resp);
    {
      std::lock_guard lock(poll_mu_);
      poll_ctx_.reset();
      if (stopping_) return;
    }
    std::chrono::milliseconds pause = 0ms;
    if (gs.ok()) {
      failures = 0;
      controller_answered_ = true;
      InstallMap(resp);
      // A member that answers at once with nothing new (an empty map, or one that does
      // not wait) is not asked again in a tight loop.
      if (Clock::now() - started < 20ms && (resp.version() <= known || resp.shards_size() == 0)) {
        pause = 100ms;
      }
    } else {
      preferred_controller_ = (idx + 1) % controllers_.size();
      ++failures;
      pause = std::chrono::milliseconds(std::min(1000, 50 * failures));
      spdlog::debug("shard map poll of {} failed: {}", controllers_[idx]->addr, gs.error_message());
    }
    if (pause > 0ms) {
      std::unique_lock lock(poll_mu_);
      poll_cv_.wait_for(lock, pause, [&] { return stopping_; });
      if (stopping_) return;
    }
  }
}

void ClusterKv::RefreshMap(Clock::time_point deadline) {
  std::lock_guard lock(refresh_mu_);
  if (Clock::now() - last_refresh_ < kRefreshInterval) return;
  v1::GetShardMapResponse resp;
  Status s = CallController(std::min(deadline, Clock::now() + kControllerCallTimeout),
                            [&](ControllerConn& c, grpc::ClientContext* ctx) {
                              v1::GetShardMapRequest req;
                              resp.Clear();
                              return rpc::FromGrpc(c.controller->GetShardMap(ctx, req, &resp), ctx);
                            });
  last_refresh_ = Clock::now();
  if (s.ok()) InstallMap(resp);
}

Result<uint64_t> ClusterKv::FreshTimestamp(Clock::time_point deadline) {
  // The controller in this process answers at once, with no call to share.
  if (options_.local_timestamps) {
    auto ts = options_.local_timestamps(1);
    if (ts.ok() && *ts != 0) return ts;
    // Not (yet) its group's leader, say: the controllers are asked as below.
  }
  // Callers that arrive while a request is out wait for the next one and share it: a
  // timestamp must come from a request sent after its caller asked, so that it follows
  // every write acknowledged before (a request already out may have been answered from
  // before that). One request per round trip, however many callers.
  std::unique_lock lock(tso_mu_);
  const uint64_t batch = tso_open_;
  const uint64_t index = tso_open_count_++;
  for (;;) {
    if (auto it = tso_done_.find(batch); it != tso_done_.end()) {
      Result<uint64_t> out = it->second.first.ok() ? Result<uint64_t>(*it->second.first + index)
                                                   : Result<uint64_t>(it->second.first.status());
      if (--it->second.second == 0) tso_done_.erase(it);
      return out;
    }
    if (!tso_sending_ && tso_open_ == batch) {
      tso_sending_ = true;
      const uint64_t count = tso_open_count_;
      ++tso_open_;
      tso_open_count_ = 0;
      lock.unlock();
      v1::GetTimestampsResponse resp;
      Status s = CallController(deadline, [&](ControllerConn& c, grpc::ClientContext* ctx) {
        v1::GetTimestampsRequest req;
        req.set_count(static_cast<uint32_t>(count));
        return rpc::FromGrpc(c.controller->GetTimestamps(ctx, req, &resp), ctx);
      });
      Result<uint64_t> first = s.ok() ? Result<uint64_t>(resp.first()) : Result<uint64_t>(s);
      if (s.ok() && resp.first() == 0) {
        first = Status::Internal("the controller handed out timestamp 0");
      }
      lock.lock();
      tso_done_.emplace(batch, std::make_pair(std::move(first), count));
      tso_sending_ = false;
      tso_cv_.notify_all();
      continue;
    }
    tso_cv_.wait(lock);
  }
}

Status ClusterKv::Ready() {
  if (!controller_answered_) return Status::Unavailable("no controller has answered yet");
  if (routes_.size() == 0) return Status::Unavailable("the cluster has no shard yet");
  if (options_.ready_check) return options_.ready_check();
  return Status::OK();
}

std::map<std::string, uint64_t> ClusterKv::StorageStats() {
  size_t nodes = 0;
  {
    std::lock_guard lock(nodes_mu_);
    nodes = node_addrs_.size();
  }
  return {{"map_version", routes_.version()},
          {"shards", routes_.size()},
          {"storage_nodes", nodes},
          {"retries", retries_.load()},
          {"map_fetches", map_fetches_.load()},
          {"unavailable", unavailable_.load()}};
}

Result<v1::ClusterStatusResponse> ClusterKv::ClusterStatus() {
  v1::ClusterStatusResponse resp;
  RETURN_IF_ERROR(CallController(
      Clock::now() + options_.request_timeout, [&](ControllerConn& c, grpc::ClientContext* ctx) {
        resp.Clear();
        return rpc::FromGrpc(c.admin->ClusterStatus(ctx, {}, &resp), ctx);
      }));
  return resp;
}

// --- Collections ---

Result<kv::CollectionInfo> ClusterKv::CreateCollection(const kv::CollectionSpec& spec) {
  RETURN_IF_ERROR(ValidateName("collection", spec.name));
  v1::CreateCollectionRequest req;
  req.set_name(spec.name);
  req.set_schema_json(spec.schema_json);
  rpc::ToProto(spec.indexes, req.mutable_indexes());
  v1::CollectionInfo resp;
  RETURN_IF_ERROR(CallController(
      Clock::now() + options_.request_timeout, [&](ControllerConn& c, grpc::ClientContext* ctx) {
        resp.Clear();
        return rpc::FromGrpc(c.catalog->CreateCollection(ctx, req, &resp), ctx);
      }));
  kv::CollectionInfo info = rpc::FromProto(resp);
  // Cached only by a Describe, which gives it a lease.
  ForgetCollection(info.name);
  return info;
}

Result<std::vector<kv::CollectionInfo>> ClusterKv::ListCollections() {
  v1::ListCollectionsResponse resp;
  RETURN_IF_ERROR(CallController(
      Clock::now() + options_.request_timeout, [&](ControllerConn& c, grpc::ClientContext* ctx) {
        resp.Clear();
        return rpc::FromGrpc(c.catalog->ListCollections(ctx, {}, &resp), ctx);
      }));
  std::vector<kv::CollectionInfo> out;
  for (const auto& c : resp.collections()) out.push_back(rpc::FromProto(c));
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return out;
}

Result<kv::CollectionInfo> ClusterKv::DescribeCollection(const std::string& name) {
  return Describe(name, Clock::now() + options_.request_timeout);
}

Result<kv::CollectionInfo> ClusterKv::Describe(const std::string& name,
                                               Clock::time_point deadline) {
  RETURN_IF_ERROR(ValidateName("collection", name));
  // The lease counts from a timestamp taken before the (linearizable) read: any index
  // change the record does not show committed after it.
  ASSIGN_OR_RETURN(const uint64_t read_ts, FreshTimestamp(deadline));
  v1::DescribeCollectionRequest req;
  req.set_name(name);
  v1::CollectionInfo resp;
  auto describe = [&](ControllerConn& c, grpc::ClientContext* ctx) {
    resp.Clear();
    return rpc::FromGrpc(c.catalog->DescribeCollection(ctx, req, &resp), ctx);
  };
  Status s = CallController(deadline, describe);
  if (s.code() == StatusCode::kNotFound) {
    // Members answer from their applied state: one that lags may not know a collection
    // created a moment ago. It is absent only if no member knows it.
    for (auto& c : controllers_) {
      grpc::ClientContext ctx;
      ctx.set_deadline(ToSystem(std::min(deadline, Clock::now() + kControllerCallTimeout)));
      if (describe(*c, &ctx).ok()) {
        s = Status::OK();
        break;
      }
    }
  }
  if (s.code() == StatusCode::kNotFound) {
    std::lock_guard lock(catalog_mu_);
    collections_.erase(name);
  }
  RETURN_IF_ERROR(s);
  kv::CollectionInfo info = rpc::FromProto(resp);
  // (A controller of a release without index builds names no lease: no bound.)
  info.lease_end_ts =
      info.schema_lease_ms == 0 ? 0 : read_ts + (info.schema_lease_ms << mvcc::kLogicalBits);
  std::lock_guard lock(catalog_mu_);
  collections_[info.name] = {info, Clock::now()};
  return info;
}

void ClusterKv::ForgetCollection(const std::string& name) {
  std::lock_guard lock(catalog_mu_);
  collections_.erase(OrDefault(name));
}

bool ClusterKv::IsSchemaLeaseEnded(const Status& s) {
  if (s.code() != StatusCode::kAborted) return false;
  for (const auto& [k, v] : s.details()) {
    if (k == "reason" && v == "SCHEMA_LEASE") return true;
  }
  return false;
}

Status ClusterKv::SchemaLeaseEnded() {
  return Status::Aborted(
             "the collection record this request was planned with may be out of date (its "
             "schema lease ended); retry")
      .WithDetail("reason", "SCHEMA_LEASE");
}

Status ClusterKv::DropCollection(const std::string& name) {
  RETURN_IF_ERROR(ValidateName("collection", name));
  if (name == kDefaultCollection) {
    return Status::FailedPrecondition("the default collection cannot be dropped");
  }
  v1::DropCollectionRequest req;
  req.set_name(name);
  Status s = CallController(Clock::now() + options_.request_timeout,
                            [&](ControllerConn& c, grpc::ClientContext* ctx) {
                              v1::DropCollectionResponse resp;
                              return rpc::FromGrpc(c.catalog->DropCollection(ctx, req, &resp), ctx);
                            });
  std::lock_guard lock(catalog_mu_);
  collections_.erase(name);
  return s;
}

Result<uint32_t> ClusterKv::CollectionId(const std::string& collection,
                                         Clock::time_point deadline) {
  ASSIGN_OR_RETURN(auto info, Collection(collection, deadline));
  return info.id;
}

Result<kv::CollectionInfo> ClusterKv::Collection(const std::string& collection,
                                                 Clock::time_point deadline) {
  const std::string& name = OrDefault(collection);
  std::optional<kv::CollectionInfo> stale;
  {
    std::lock_guard lock(catalog_mu_);
    if (auto it = collections_.find(name); it != collections_.end()) {
      // Reread well before the lease ends, so that writes seldom meet its end.
      const uint64_t lease_ms = it->second.info.schema_lease_ms;
      const auto ttl = lease_ms == 0
                           ? Clock::duration(options_.collection_ttl)
                           : std::min<Clock::duration>(options_.collection_ttl,
                                                       std::chrono::milliseconds(lease_ms / 2));
      if (Clock::now() - it->second.fetched < ttl) return it->second.info;
      stale = it->second.info;
    }
  }
  RETURN_IF_ERROR(ValidateName("collection", name));
  // With an id cached, the look-up gets one round of the controllers, so that a data
  // request keeps most of its time when they are unreachable.
  auto info =
      Describe(name, stale ? std::min(deadline, Clock::now() + kControllerCallTimeout) : deadline);
  if (info.ok()) return info;
  // With no controller reachable, data requests go on with what is cached.
  if (stale && info.status().code() == StatusCode::kUnavailable) return *stale;
  return info.status();
}

// --- Storage nodes ---

std::optional<ClusterKv::NodeConn> ClusterKv::Node(uint64_t node) {
  std::lock_guard lock(nodes_mu_);
  NodeBatcher::Options o;
  o.max_in_flight = options_.batch_in_flight;
  if (auto local = options_.local_nodes.find(node); local != options_.local_nodes.end()) {
    auto& conn = local_conns_[node];
    if (!conn.client) {
      conn.client = local->second;
      // A get costs no call here: batching would only make readers wait for each
      // other. Writes still gather, into fewer Raft entries.
      if (o.max_in_flight > 0) conn.writes = std::make_shared<NodeBatcher>(conn.client, o);
    }
    return conn;
  }
  auto it = node_addrs_.find(node);
  if (it == node_addrs_.end()) return std::nullopt;
  auto& conn = conns_[it->second];
  if (!conn.client) {
    conn.client = rpc::NewGrpcShardClient(NewChannel(it->second));
    if (o.max_in_flight > 0) {
      conn.reads = std::make_shared<NodeBatcher>(conn.client, o);
      conn.writes = std::make_shared<NodeBatcher>(conn.client, o);
    }
  }
  return conn;
}

Status ClusterKv::CallNode(const NodeConn& node, const v1::ShardBatchItem& item,
                           Clock::time_point deadline, v1::ShardBatchResult* out) {
  NodeBatcher* batcher = item.has_write() ? node.writes.get() : node.reads.get();
  // A write this large is a batch of its own: it goes out at once, as its own call,
  // rather than wait for the node's call in flight. So a bulk load's next part reaches
  // the shard's Raft log while the part before it applies.
  if (batcher && item.has_write() && item.write().ByteSizeLong() >= kAloneWriteBytes) {
    batcher = nullptr;
  }
  if (batcher && !batch_unsupported_.load(std::memory_order_relaxed)) {
    Status s = batcher->Call(item, deadline, out);
    if (s.code() != StatusCode::kUnimplemented) return s.ok() ? rpc::StatusOf(*out) : s;
    // A node of a version without Batch: every request is its own call from now on.
    batch_unsupported_.store(true, std::memory_order_relaxed);
  }
  out->Clear();
  if (item.has_write()) return node.client->Write(item.write(), out->mutable_write(), deadline);
  return node.client->Get(item.get(), out->mutable_get(), deadline);
}

void ClusterKv::SuspectNode(uint64_t node) {
  std::lock_guard lock(nodes_mu_);
  suspect_until_[node] = Clock::now() + options_.node_suspect;
}

void ClusterKv::TrustNode(uint64_t node) {
  std::lock_guard lock(nodes_mu_);
  suspect_until_.erase(node);
}

std::vector<uint64_t> ClusterKv::Candidates(const sharding::ShardRecord& shard, Target target) {
  std::vector<uint64_t> out;
  if (shard.leader != 0) out.push_back(shard.leader);
  for (const auto& r : shard.replicas) {
    if (!r.learner && r.node != shard.leader) out.push_back(r.node);
  }
  if (target == Target::kAnyReplica) {
    for (const auto& r : shard.replicas) {
      if (r.learner && r.node != shard.leader) out.push_back(r.node);
    }
  }
  const auto now = Clock::now();
  std::lock_guard lock(nodes_mu_);
  std::stable_partition(out.begin(), out.end(), [&](uint64_t n) {
    auto it = suspect_until_.find(n);
    return it == suspect_until_.end() || it->second <= now;
  });
  return out;
}

bool ClusterKv::HandleNodeError(const sharding::ShardRecord& shard, uint64_t node, const Status& s,
                                bool write, bool has_request_id, Clock::time_point deadline,
                                int* rotate) {
  const NodeAnswer a = ClassifyNodeError(s);
  if (write && !WriteRetryable(a.verdict, has_request_id)) return false;
  switch (a.verdict) {
    case NodeVerdict::kOutcome:
      return false;
    case NodeVerdict::kNotLeader:
      if (a.leader != 0 && a.leader != node) {
        // A member that names the leader has heard from it lately: go there first.
        routes_.SetLeader(shard.id, a.leader);
        TrustNode(a.leader);
        *rotate = 0;
      } else {
        ++*rotate;
      }
      return true;
    case NodeVerdict::kEpochNotMatch:
      if (a.descriptor) Learn(*a.descriptor);
      if (a.new_descriptor) Learn(*a.new_descriptor);
      RefreshMap(deadline);
      return true;
    case NodeVerdict::kShardNotFound:
      routes_.Invalidate(shard.id);
      RefreshMap(deadline);
      ++*rotate;
      return true;
    case NodeVerdict::kBusy:
      return true;
    case NodeVerdict::kUnreachable:
    case NodeVerdict::kUnknown:
      SuspectNode(node);
      RefreshMap(deadline);
      ++*rotate;
      return true;
  }
  return false;
}

Status ClusterKv::CallShard(std::string_view row_key, Target target, bool write,
                            bool has_request_id, Clock::time_point deadline,
                            const ShardCall& call) {
  return CallShardAt([&] { return routes_.Locate(row_key); }, target, write, has_request_id,
                     deadline, call);
}

Status ClusterKv::CallShardAt(const std::function<Result<sharding::ShardRecord>()>& locate,
                              Target target, bool write, bool has_request_id,
                              Clock::time_point deadline, const ShardCall& call) {
  Status last = Status::OK();
  int rotate = 0;
  int attempt = 0;
  uint64_t last_node = 0;
  for (;; ++attempt) {
    if (attempt > 0) {
      ++retries_;
      // A fresh leader hint is followed at once; everything else backs off.
      const bool follow =
          ClassifyNodeError(last).verdict == NodeVerdict::kNotLeader && rotate == 0 && attempt < 4;
      const bool new_epoch =
          ClassifyNodeError(last).verdict == NodeVerdict::kEpochNotMatch && attempt < 4;
      if (!follow && !new_epoch) Backoff(attempt - 1, deadline);
    }
    // An attempt needs a moment: one started with no time left would only time out, and
    // a write that times out leaves its outcome unknown.
    if (shutting_down_.load(std::memory_order_relaxed) || deadline - Clock::now() < kMinAttempt) {
      ++unavailable_;
      return DeadlineError(write ? "write" : "read", last);
    }
    auto shard = locate();
    if (!shard.ok()) {
      RefreshMap(deadline);
      shard = locate();
      if (!shard.ok()) {
        last = Status::Unavailable("no shard of the cached map holds the key: " +
                                   shard.status().message());
        continue;
      }
    }
    const auto candidates = Candidates(*shard, target);
    if (candidates.empty()) {
      last = Status::Unavailable("shard " + std::to_string(shard->id) + " has no replica");
      RefreshMap(deadline);
      continue;
    }
    const uint64_t node = candidates[static_cast<size_t>(rotate) % candidates.size()];
    auto conn = Node(node);
    if (!conn) {
      last = Status::Unavailable("no address for storage node " + std::to_string(node));
      RefreshMap(deadline);
      ++rotate;
      continue;
    }
    // A write that cannot be resent must not be cut short: its outcome would be unknown.
    const bool resendable = !write || has_request_id;
    const auto attempt_deadline =
        resendable ? std::min(deadline, Clock::now() + options_.attempt_timeout) : deadline;
    last_node = node;
    Status s = call(*shard, *conn, attempt_deadline);
    if (s.ok()) return s;
    if (!HandleNodeError(*shard, node, s, write, has_request_id, deadline, &rotate)) {
      if (s.code() == StatusCode::kUnavailable &&
          ClassifyNodeError(s).verdict == NodeVerdict::kUnknown) {
        return Status::Unavailable("the write's outcome is unknown (storage node " +
                                   std::to_string(last_node) + ": " + s.message() +
                                   "); retry it with a request_id to apply it once");
      }
      if (ClassifyNodeError(s).verdict == NodeVerdict::kUnknown) {
        return Status(s.code(), "the write's outcome is unknown (storage node " +
                                    std::to_string(last_node) + ": " + s.message() +
                                    "); retry it with a request_id to apply it once");
      }
      return s;
    }
    last = s;
  }
}

// --- Writes ---

Result<kv::WriteResult> ClusterKv::Write(v1::ShardWriteRequest req,
                                         std::vector<std::string> row_keys,
                                         Clock::time_point deadline) {
  return WriteKeeping(&req, row_keys, deadline);
}

Result<kv::WriteResult> ClusterKv::WriteKeeping(v1::ShardWriteRequest* req,
                                                const std::vector<std::string>& row_keys,
                                                Clock::time_point deadline) {
  v1::ShardBatchResult result;
  const bool has_request_id = !req->request_id().empty();
  // The one item every attempt sends (only its route changes): the request is swapped
  // in rather than copied, and swapped back out at the end.
  v1::ShardBatchItem item;
  item.mutable_write()->Swap(req);
  // A row held by a transaction: nothing applied, so resolve it and send the write again.
  Status sent = WithLocksResolved(0, nullptr, deadline, [&] {
    return CallShard(row_keys.front(), Target::kLeader, /*write=*/true, has_request_id, deadline,
                     [&](const sharding::ShardRecord& shard, const NodeConn& node,
                         Clock::time_point d) -> Status {
                       for (const auto& k : row_keys) {
                         if (!InRange(shard, k)) {
                           return RowsMovedError();
                         }
                       }
                       SetRoute(shard, item.mutable_write()->mutable_route());
                       return CallNode(node, item, d, &result);
                     });
  });
  req->Swap(item.mutable_write());
  RETURN_IF_ERROR(sent);
  return kv::WriteResult{result.write().version(), result.write().existed()};
}

Result<kv::WriteResult> ClusterKv::Put(const kv::PutRequest& req) {
  const auto deadline = Clock::now() + options_.request_timeout;
  RETURN_IF_ERROR(ValidatePut(req, options_.limits));
  for (;;) {
    ASSIGN_OR_RETURN(auto info, Collection(req.collection, deadline));
    Result<kv::WriteResult> out = Status::OK();
    if (HasRules(info)) {
      out = WriteDocument(info, req.key, req.value, req.if_version, req.request_id, deadline);
    } else {
      v1::ShardWriteRequest w;
      auto* m = w.add_mutations();
      m->set_row_key(mvcc::EncodeRowKey(kTenant, info.id, req.key));
      m->set_value(req.value);
      if (req.if_version) {
        m->set_has_if_version(true);
        m->set_if_version(*req.if_version);
      }
      w.set_request_id(req.request_id);
      w.set_fingerprint(FingerprintPut(req));
      w.set_commit_below(info.lease_end_ts);
      failpoint::Hit("cluster_kv.plain_put_planned");
      out = Write(std::move(w), {m->row_key()}, deadline);
    }
    if (out.ok() || !IsSchemaLeaseEnded(out.status()) || Expired(deadline)) return out;
    ForgetCollection(req.collection);  // nothing applied: plan it again with a new record
  }
}

Result<kv::WriteResult> ClusterKv::Delete(const kv::DeleteRequest& req) {
  const auto deadline = Clock::now() + options_.request_timeout;
  RETURN_IF_ERROR(ValidateDelete(req, options_.limits));
  for (;;) {
    ASSIGN_OR_RETURN(auto info, Collection(req.collection, deadline));
    Result<kv::WriteResult> out = Status::OK();
    if (HasRules(info)) {
      out = WriteDocument(info, req.key, std::nullopt, req.if_version, req.request_id, deadline);
    } else {
      v1::ShardWriteRequest w;
      auto* m = w.add_mutations();
      m->set_delete_(true);
      m->set_row_key(mvcc::EncodeRowKey(kTenant, info.id, req.key));
      if (req.if_version) {
        m->set_has_if_version(true);
        m->set_if_version(*req.if_version);
      }
      w.set_request_id(req.request_id);
      w.set_fingerprint(FingerprintDelete(req));
      w.set_commit_below(info.lease_end_ts);
      out = Write(std::move(w), {m->row_key()}, deadline);
    }
    if (out.ok() || !IsSchemaLeaseEnded(out.status()) || Expired(deadline)) return out;
    ForgetCollection(req.collection);
  }
}

Result<kv::WriteResult> ClusterKv::Batch(const kv::BatchRequest& req) {
  const auto deadline = Clock::now() + options_.request_timeout;
  RETURN_IF_ERROR(ValidateBatch(req, options_.limits));
  for (;;) {
    auto out = BatchOnce(req, deadline);
    if (out.ok() || !IsSchemaLeaseEnded(out.status()) || Expired(deadline)) return out;
    for (const auto& op : req.ops) ForgetCollection(op.collection);
  }
}

Result<kv::WriteResult> ClusterKv::BatchOnce(const kv::BatchRequest& req,
                                             Clock::time_point deadline) {
  ASSIGN_OR_RETURN(const bool documents, WritesDocuments(req.ops, deadline));
  if (documents) {
    // Documents and their entries: a transaction (reading the documents first).
    if (!req.request_id.empty()) {
      return Status::InvalidArgument(
          "a batch that writes documents is a transaction and takes no request id (a retry "
          "could apply twice); make retries safe with if_version");
    }
    ASSIGN_OR_RETURN(uint64_t commit_ts, CommitOps(req.ops, deadline));
    return kv::WriteResult{commit_ts, false};
  }
  v1::ShardWriteRequest w;
  std::vector<std::string> row_keys;
  row_keys.reserve(req.ops.size());
  uint64_t commit_below = 0;
  for (size_t i = 0; i < req.ops.size(); ++i) {
    const auto& op = req.ops[i];
    auto info = Collection(op.collection, deadline);
    if (!info.ok()) return info.status().WithContext("ops[" + std::to_string(i) + "]");
    commit_below = LeastLease(commit_below, info->lease_end_ts);
    auto* m = w.add_mutations();
    const bool del = op.kind == kv::BatchOp::Kind::kDelete;
    m->set_delete_(del);
    m->set_row_key(mvcc::EncodeRowKey(kTenant, info->id, op.key));
    if (!del) m->set_value(op.value);
    if (op.if_version) {
      m->set_has_if_version(true);
      m->set_if_version(*op.if_version);
    }
    row_keys.push_back(m->row_key());
  }
  w.set_request_id(req.request_id);
  w.set_fingerprint(FingerprintBatch(req));
  w.set_commit_below(commit_below);
  ASSIGN_OR_RETURN(auto groups, GroupByShard(row_keys, deadline));
  if (groups.size() == 1) {
    auto out = Write(w, row_keys, deadline);
    if (out.ok() || !IsRowsMoved(out.status())) {
      if (out.ok()) out->existed = false;
      return out;
    }
    // The shard split under the batch: it spans shards now.
  }
  if (!req.request_id.empty()) {
    return Status::InvalidArgument(
        "a batch across shards is a transaction and takes no request id (a retry could apply "
        "twice)");
  }
  ASSIGN_OR_RETURN(uint64_t start_ts, FreshTimestamp(deadline));
  std::vector<txn::TxnMutation> mutations;
  mutations.reserve(w.mutations_size());
  for (auto& m : *w.mutable_mutations()) {
    txn::TxnMutation t;
    t.kind = m.delete_() ? txn::LockKind::kDelete : txn::LockKind::kPut;
    t.row_key = std::move(*m.mutable_row_key());
    t.value = std::move(*m.mutable_value());
    if (m.has_if_version()) t.if_version = m.if_version();
    mutations.push_back(std::move(t));
  }
  ASSIGN_OR_RETURN(uint64_t commit_ts,
                   CommitTransaction(start_ts, std::move(mutations), deadline, commit_below));
  return kv::WriteResult{commit_ts, false};
}

// --- Reads ---

Result<kv::GetResult> ClusterKv::Get(const kv::GetRequest& req) {
  const auto deadline = Clock::now() + options_.request_timeout;
  RETURN_IF_ERROR(ValidateKey(req.key, options_.limits));
  if (req.consistency == kv::Consistency::kSnapshot && req.at == 0) {
    return Status::InvalidArgument("a snapshot read needs a timestamp (at)");
  }
  ASSIGN_OR_RETURN(uint32_t id, CollectionId(req.collection, deadline));
  return GetById(id, req, deadline);
}

Result<kv::GetResult> ClusterKv::GetById(uint32_t id, const kv::GetRequest& req,
                                         Clock::time_point deadline) {
  v1::ShardGetRequest g;
  g.set_row_key(mvcc::EncodeRowKey(kTenant, id, req.key));
  g.set_consistency(ToShard(req.consistency));
  if (req.consistency == kv::Consistency::kSnapshot) g.set_at(req.at);
  v1::ShardBatchResult result;
  const Target target =
      req.consistency == kv::Consistency::kStale ? Target::kAnyReplica : Target::kLeader;
  const uint64_t read_ts =
      req.consistency == kv::Consistency::kSnapshot ? req.at : mvcc::kMaxTimestamp;
  std::vector<uint64_t> resolved;
  RETURN_IF_ERROR(WithLocksResolved(read_ts, &resolved, deadline, [&] {
    g.mutable_resolved()->Assign(resolved.begin(), resolved.end());
    return CallShard(
        g.row_key(), target, /*write=*/false, false, deadline,
        [&](const sharding::ShardRecord& shard, const NodeConn& node, Clock::time_point d) {
          SetRoute(shard, g.mutable_route());
          v1::ShardBatchItem item;
          *item.mutable_get() = g;
          return CallNode(node, item, d, &result);
        });
  }));
  const v1::ShardGetResponse& resp = result.get();
  kv::GetResult out;
  out.found = resp.found();
  if (out.found) {
    out.value = resp.value();
    out.version = resp.version();
  }
  return out;
}

Result<kv::ScanResult> ClusterKv::Scan(const kv::ScanRequest& req) {
  const auto deadline = Clock::now() + options_.request_timeout;
  ASSIGN_OR_RETURN(const size_t limit, PageLimit(req.limit, options_.limits));
  if (req.consistency == kv::Consistency::kSnapshot && req.at == 0) {
    return Status::InvalidArgument("a snapshot read needs a timestamp (at)");
  }
  ASSIGN_OR_RETURN(uint32_t id, CollectionId(req.collection, deadline));
  return ScanById(id, req, limit, deadline);
}

Result<kv::ScanResult> ClusterKv::ScanById(uint32_t id, const kv::ScanRequest& req, size_t limit,
                                           Clock::time_point deadline) {
  auto [start, end] = ScanRange(req.start, req.end, req.prefix);
  kv::ScanResult out;
  switch (req.consistency) {
    case kv::Consistency::kLinearizable: {
      // A fresh timestamp per scan: it follows every write acknowledged before now.
      ASSIGN_OR_RETURN(out.read_ts, FreshTimestamp(deadline));
      break;
    }
    case kv::Consistency::kSnapshot:
      out.read_ts = req.at;
      break;
    case kv::Consistency::kStale:
      out.read_ts = 0;  // each replica as of what it has applied
      break;
  }
  if (!end.empty() && start >= end) return out;

  const std::string prefix = mvcc::CollectionPrefix(kTenant, id);
  // What remains to be read: [lo, hi) in row keys, [cur_start, cur_end) in user keys.
  std::string lo = mvcc::EncodeRowKey(kTenant, id, start);
  std::string hi =
      end.empty() ? mvcc::PrefixSuccessor(prefix) : mvcc::EncodeRowKey(kTenant, id, end);
  std::string cur_start = start, cur_end = end;
  const Target target =
      req.consistency == kv::Consistency::kStale ? Target::kAnyReplica : Target::kLeader;
  // Once the limit is filled at the end of a shard, later shards are asked for one row
  // only, to learn whether `next` is due.
  bool probing = false;
  std::vector<uint64_t> resolved;
  const uint64_t lock_ts = out.read_ts == 0 ? mvcc::kMaxTimestamp : out.read_ts;
  while (lo < hi) {
    const size_t want = probing ? 1 : limit - out.items.size();
    v1::ShardScanResponse resp;
    sharding::ShardRecord used;
    auto locate = [&]() -> Result<sharding::ShardRecord> {
      if (!req.reverse) return routes_.Locate(lo);
      ASSIGN_OR_RETURN(auto shards, routes_.Range(lo, hi));
      return shards.back();
    };
    RETURN_IF_ERROR(WithLocksResolved(lock_ts, &resolved, deadline, [&] {
      return CallShardAt(
          locate, target, /*write=*/false, false, deadline,
          [&](const sharding::ShardRecord& shard, const NodeConn& node, Clock::time_point d) {
            v1::ShardScanRequest s;
            s.mutable_resolved()->Assign(resolved.begin(), resolved.end());
            SetRoute(shard, s.mutable_route());
            s.set_tenant(kTenant);
            s.set_collection(id);
            s.set_start(cur_start);
            s.set_end(cur_end);
            s.set_limit(static_cast<uint32_t>(std::min(want, options_.limits.max_scan_limit)));
            s.set_reverse(req.reverse);
            s.set_consistency(ToShard(req.consistency));
            s.set_read_ts(out.read_ts);
            used = shard;
            return node.client->Scan(s, &resp, d);
          });
    }));
    if (probing) {
      if (resp.items_size() > 0) {
        // More rows remain: forward, the first key not returned; reverse, the last one
        // returned (the next exclusive end).
        out.next = req.reverse ? out.items.back().key : resp.items(0).key();
        break;
      }
    } else {
      for (auto& item : *resp.mutable_items()) {
        if (out.items.size() == limit) break;
        out.items.push_back(
            {std::move(*item.mutable_key()), std::move(*item.mutable_value()), item.version()});
      }
      if (resp.has_next()) {
        if (out.items.size() == limit) {
          out.next = req.reverse ? out.items.back().key : resp.next();
          break;
        }
        // The node stopped short of what was asked: go on in the same shard.
        if (req.reverse) {
          cur_end = resp.next();
          hi = mvcc::EncodeRowKey(kTenant, id, cur_end);
        } else {
          cur_start = resp.next();
          lo = mvcc::EncodeRowKey(kTenant, id, cur_start);
        }
        continue;
      }
      if (out.items.size() == limit) probing = true;
    }
    // The shard has nothing more in the range: move past it.
    if (req.reverse) {
      if (used.start_key <= lo) break;
      hi = used.start_key;
      if (!out.items.empty() && (cur_end.empty() || out.items.back().key < cur_end)) {
        cur_end = out.items.back().key;
      }
    } else {
      if (used.end_key.empty() || used.end_key >= hi) break;
      lo = used.end_key;
      if (!out.items.empty()) {
        std::string after = out.items.back().key + std::string(1, '\0');
        if (after > cur_start) cur_start = std::move(after);
      }
    }
  }
  return out;
}

}  // namespace gojodb::gateway
