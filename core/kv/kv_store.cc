#include "core/kv/kv_store.h"

#include <algorithm>
#include <mutex>

#include "internal/fingerprint.h"

namespace gojodb::kv {
namespace {

constexpr auto kMeta = storage::ColumnFamily::kMeta;
const std::string kRequestIdPrefix =
    "\x03"
    "request_id/";
constexpr size_t kMaxRequestIdBytes = 256;
constexpr uint64_t kMaxFutureSnapshotMs = 5000;

struct RequestRecord {
  uint64_t fingerprint = 0;
  uint64_t version = 0;
  uint64_t created_ms = 0;
  bool existed = false;
};

std::string EncodeRecord(const RequestRecord& r) {
  std::string out;
  mvcc::AppendUint64(&out, r.fingerprint);
  mvcc::AppendUint64(&out, r.version);
  mvcc::AppendUint64(&out, r.created_ms);
  out.push_back(r.existed ? 1 : 0);
  return out;
}

Result<RequestRecord> DecodeRecord(std::string_view in) {
  if (in.size() != 25) return Status::Corruption("request id record");
  return RequestRecord{mvcc::ReadUint64(in), mvcc::ReadUint64(in.substr(8)),
                       mvcc::ReadUint64(in.substr(16)), in[24] != 0};
}

Status TooLarge(std::string what, size_t size, size_t limit) {
  return Status::ResourceExhausted(what + " is " + std::to_string(size) + " bytes; the limit is " +
                                   std::to_string(limit))
      .WithDetail("reason", "TOO_LARGE");
}

const std::string& OrDefault(const std::string& collection) {
  static const std::string kDefault = kDefaultCollection;
  return collection.empty() ? kDefault : collection;
}

}  // namespace

Result<std::unique_ptr<KvStore>> KvStore::Open(storage::Engine* engine, mvcc::TimestampOracle* tso,
                                               Clock* clock,
                                               std::shared_ptr<mvcc::SafePoint> safe_point,
                                               KvStoreOptions options) {
  ASSIGN_OR_RETURN(mvcc::Timestamp now, tso->Next());
  ASSIGN_OR_RETURN(auto catalog, Catalog::Open(engine, now));
  std::unique_ptr<KvStore> store(new KvStore(engine, tso, clock, std::move(safe_point),
                                             std::move(options), std::move(catalog)));
  RETURN_IF_ERROR(store->RunMaintenance());
  store->maintenance_ = std::thread([s = store.get()] { s->MaintenanceLoop(); });
  return store;
}

KvStore::KvStore(storage::Engine* engine, mvcc::TimestampOracle* tso, Clock* clock,
                 std::shared_ptr<mvcc::SafePoint> safe_point, KvStoreOptions options,
                 std::unique_ptr<Catalog> catalog)
    : engine_(engine),
      tso_(tso),
      clock_(clock),
      safe_point_(std::move(safe_point)),
      options_(std::move(options)),
      catalog_(std::move(catalog)),
      tracker_(tso) {}

KvStore::~KvStore() {
  {
    std::lock_guard lock(bg_mu_);
    stopping_ = true;
  }
  bg_cv_.notify_all();
  if (maintenance_.joinable()) maintenance_.join();
}

Status KvStore::CheckKey(std::string_view key) const {
  if (key.empty()) return Status::InvalidArgument("key must not be empty");
  if (key.size() > options_.limits.max_key_bytes) {
    return TooLarge("key", key.size(), options_.limits.max_key_bytes);
  }
  return Status::OK();
}

Result<uint32_t> KvStore::CollectionId(const std::string& name) const {
  auto info = catalog_->Find(OrDefault(name));
  if (!info) {
    RETURN_IF_ERROR(Catalog::ValidateName(name));
    return Status::NotFound("collection '" + name + "' does not exist");
  }
  return info->id;
}

Result<WriteResult> KvStore::Put(const PutRequest& req) {
  RETURN_IF_ERROR(CheckKey(req.key));
  if (req.value.size() > options_.limits.max_value_bytes) {
    return TooLarge("value", req.value.size(), options_.limits.max_value_bytes);
  }
  std::shared_lock ddl(ddl_mu_);
  ASSIGN_OR_RETURN(uint32_t id, CollectionId(req.collection));
  Fingerprint fp;
  fp.Add("put");
  fp.Add(OrDefault(req.collection));
  fp.Add(req.key);
  fp.Add(req.value);
  fp.Add(req.if_version ? *req.if_version + 1 : 0);
  return Commit(
      {{false, mvcc::EncodeRowKey(kDefaultTenant, id, req.key), req.value, req.if_version}},
      req.request_id, fp.value());
}

Result<WriteResult> KvStore::Delete(const DeleteRequest& req) {
  RETURN_IF_ERROR(CheckKey(req.key));
  std::shared_lock ddl(ddl_mu_);
  ASSIGN_OR_RETURN(uint32_t id, CollectionId(req.collection));
  Fingerprint fp;
  fp.Add("delete");
  fp.Add(OrDefault(req.collection));
  fp.Add(req.key);
  fp.Add(req.if_version ? *req.if_version + 1 : 0);
  return Commit({{true, mvcc::EncodeRowKey(kDefaultTenant, id, req.key), {}, req.if_version}},
                req.request_id, fp.value());
}

Result<WriteResult> KvStore::Batch(const BatchRequest& req) {
  if (req.ops.empty()) return Status::InvalidArgument("a batch needs at least one op");
  if (req.ops.size() > options_.limits.max_batch_ops) {
    return Status::InvalidArgument("a batch may hold at most " +
                                   std::to_string(options_.limits.max_batch_ops) + " ops");
  }
  std::shared_lock ddl(ddl_mu_);
  std::vector<Mutation> mutations;
  mutations.reserve(req.ops.size());
  Fingerprint fp;
  fp.Add("batch");
  for (size_t i = 0; i < req.ops.size(); ++i) {
    const auto& op = req.ops[i];
    const std::string where = "ops[" + std::to_string(i) + "]";
    RETURN_IF_ERROR(CheckKey(op.key).WithContext(where));
    if (op.kind == BatchOp::Kind::kPut && op.value.size() > options_.limits.max_value_bytes) {
      return TooLarge(where + " value", op.value.size(), options_.limits.max_value_bytes);
    }
    auto id = CollectionId(op.collection);
    if (!id.ok()) return id.status().WithContext(where);
    const bool del = op.kind == BatchOp::Kind::kDelete;
    mutations.push_back({del, mvcc::EncodeRowKey(kDefaultTenant, *id, op.key),
                         del ? std::string_view() : std::string_view(op.value), op.if_version});
    fp.Add(del ? "delete" : "put");
    fp.Add(OrDefault(op.collection));
    fp.Add(op.key);
    fp.Add(op.value);
    fp.Add(op.if_version ? *op.if_version + 1 : 0);
  }
  return Commit(mutations, req.request_id, fp.value());
}

Result<WriteResult> KvStore::Commit(const std::vector<Mutation>& mutations,
                                    const std::string& request_id, uint64_t fingerprint) {
  if (request_id.size() > kMaxRequestIdBytes) {
    return Status::InvalidArgument("request id is longer than 256 bytes");
  }
  const std::string rid_key = request_id.empty() ? "" : kRequestIdPrefix + request_id;
  std::vector<std::string_view> latch_keys;
  bool conditional = !rid_key.empty();
  for (const auto& m : mutations) {
    latch_keys.push_back(m.row_key);
    conditional = conditional || m.if_version.has_value();
  }
  if (!rid_key.empty()) latch_keys.push_back(rid_key);
  // Blind writes share their rows' latches and so share fsyncs even on a hot row.
  auto guard = latches_.Lock(latch_keys, /*exclusive=*/conditional);

  // A retry of a request that already applied answers as the first attempt did.
  if (!rid_key.empty()) {
    ASSIGN_OR_RETURN(auto prior, engine_->Get({}, kMeta, rid_key));
    if (prior) {
      ASSIGN_OR_RETURN(auto rec, DecodeRecord(*prior));
      if (rec.fingerprint != fingerprint) {
        return Status::InvalidArgument("request id '" + request_id +
                                       "' was already used for a different request");
      }
      return WriteResult{rec.version, rec.existed};
    }
  }

  mvcc::MvccReader reader(engine_, nullptr);
  bool existed = false;
  for (size_t i = 0; i < mutations.size(); ++i) {
    const auto& m = mutations[i];
    // Only conditions and a single delete's `existed` need the current version.
    if (!m.if_version && !(m.is_delete && mutations.size() == 1)) continue;
    ASSIGN_OR_RETURN(auto cur, reader.Get(m.row_key, mvcc::kMaxTimestamp));
    const bool live = cur && !cur->deleted;
    const uint64_t current_version = live ? cur->version : 0;
    if (mutations.size() == 1) existed = live;
    if (m.if_version && *m.if_version != current_version) {
      std::string msg = "version mismatch: expected " + std::to_string(*m.if_version) +
                        ", current " + std::to_string(current_version);
      if (mutations.size() > 1) msg = "ops[" + std::to_string(i) + "]: " + msg;
      return Status::FailedPrecondition(msg).WithDetail("current_version",
                                                        std::to_string(current_version));
    }
  }

  ASSIGN_OR_RETURN(mvcc::Timestamp ts, tracker_.Begin());
  storage::WriteBatch batch;
  for (const auto& m : mutations) {
    if (m.is_delete)
      mvcc::DeleteVersion(&batch, m.row_key, ts);
    else
      mvcc::PutVersion(&batch, m.row_key, ts, m.value);
  }
  if (!rid_key.empty()) {
    batch.Put(kMeta, rid_key, EncodeRecord({fingerprint, ts, clock_->NowMillis(), existed}));
  }
  Status s = engine_->Write({.sync = options_.sync_writes}, batch);
  tracker_.End(ts);
  RETURN_IF_ERROR(s);
  return WriteResult{ts, existed};
}

Result<mvcc::Timestamp> KvStore::ReadTimestamp(Consistency c, uint64_t at) {
  if (c != Consistency::kSnapshot) return tracker_.ReadTimestamp();
  if (at == 0) return Status::InvalidArgument("a snapshot read needs a timestamp (at)");
  const mvcc::Timestamp sp = safe_point_->ts.load();
  if (at < sp) {
    return Status::OutOfRange("snapshot " + std::to_string(at) +
                              " is older than the GC safe point " + std::to_string(sp));
  }
  // A snapshot slightly ahead of the oracle is served by moving the oracle past it; one
  // far in the future would drag every later timestamp with it, so it is refused.
  if (mvcc::PhysicalMillis(at) > clock_->NowMillis() + kMaxFutureSnapshotMs) {
    return Status::InvalidArgument("snapshot " + std::to_string(at) + " is in the future");
  }
  RETURN_IF_ERROR(tracker_.WaitFor(at));
  return at;
}

Result<GetResult> KvStore::Get(const GetRequest& req) {
  RETURN_IF_ERROR(CheckKey(req.key));
  ASSIGN_OR_RETURN(uint32_t id, CollectionId(req.collection));
  // A point read at the latest state needs no timestamp wait: it returns the version
  // with the largest commit timestamp among those already durable (RocksDB publishes a
  // write only after its fsync), and every write acknowledged before the read began is
  // among them. Concurrent blind writes may land out of timestamp order; the newest
  // timestamp still wins, so nothing older can reappear.
  mvcc::Timestamp ts = mvcc::kMaxTimestamp;
  if (req.consistency == Consistency::kSnapshot) {
    ASSIGN_OR_RETURN(ts, ReadTimestamp(req.consistency, req.at));
  }
  mvcc::MvccReader reader(engine_, nullptr);
  ASSIGN_OR_RETURN(auto v, reader.Get(mvcc::EncodeRowKey(kDefaultTenant, id, req.key), ts));
  GetResult out;
  if (v && !v->deleted) {
    out.found = true;
    out.value = std::move(v->value);
    out.version = v->version;
  }
  return out;
}

Result<ScanResult> KvStore::Scan(const ScanRequest& req) {
  size_t limit = req.limit == 0 ? options_.limits.default_scan_limit : req.limit;
  if (limit > options_.limits.max_scan_limit) {
    return Status::InvalidArgument("limit " + std::to_string(limit) + " is above the maximum " +
                                   std::to_string(options_.limits.max_scan_limit));
  }
  ASSIGN_OR_RETURN(uint32_t id, CollectionId(req.collection));
  mvcc::ScanOptions o;
  o.tenant = kDefaultTenant;
  o.collection = id;
  o.start = req.start;
  o.end = req.end;
  if (!req.prefix.empty()) {
    o.start = std::max(o.start, req.prefix);
    std::string succ = mvcc::PrefixSuccessor(req.prefix);
    if (!succ.empty() && (o.end.empty() || succ < o.end)) o.end = succ;
  }
  o.limit = limit;
  o.reverse = req.reverse;
  ASSIGN_OR_RETURN(o.read_ts, ReadTimestamp(req.consistency, req.at));
  ScanResult out;
  out.read_ts = o.read_ts;
  if (!o.end.empty() && o.start >= o.end) return out;
  mvcc::MvccReader reader(engine_, nullptr);
  ASSIGN_OR_RETURN(auto scanned, reader.Scan(o));
  out.items.reserve(scanned.items.size());
  for (auto& i : scanned.items)
    out.items.push_back({std::move(i.key), std::move(i.value), i.version});
  out.next = std::move(scanned.next);
  return out;
}

Result<CollectionInfo> KvStore::CreateCollection(const CollectionSpec& spec) {
  if (!spec.schema_json.empty() || !spec.indexes.empty()) {
    return Status::Unimplemented(
        "collection schemas and secondary indexes are not supported yet; create the "
        "collection without them");
  }
  std::unique_lock ddl(ddl_mu_);
  ASSIGN_OR_RETURN(mvcc::Timestamp ts, tso_->Next());
  return catalog_->Create(spec, ts);
}

Result<std::vector<CollectionInfo>> KvStore::ListCollections() { return catalog_->List(); }

Result<CollectionInfo> KvStore::DescribeCollection(const std::string& name) {
  RETURN_IF_ERROR(Catalog::ValidateName(name));
  auto info = catalog_->Find(name);
  if (!info) return Status::NotFound("collection '" + name + "' does not exist");
  return *info;
}

Status KvStore::DropCollection(const std::string& name) {
  RETURN_IF_ERROR(Catalog::ValidateName(name));
  if (name == kDefaultCollection) {
    return Status::FailedPrecondition("the default collection cannot be dropped");
  }
  std::unique_lock ddl(ddl_mu_);
  return catalog_->Drop(name);
}

std::map<std::string, uint64_t> KvStore::StorageStats() {
  auto stats = engine_->Stats();
  stats["gc_safe_point"] = safe_point_->ts.load();
  stats["last_timestamp"] = tso_->Last();
  return stats;
}

Status KvStore::RunMaintenance() {
  const uint64_t now = clock_->NowMillis();
  if (now > options_.gc_ttl_ms) {
    const mvcc::Timestamp sp = mvcc::ComposeTimestamp(now - options_.gc_ttl_ms, 0);
    if (sp > safe_point_->ts.load()) safe_point_->ts.store(sp);
  }
  // Forget request ids older than their TTL.
  storage::ReadOptions ro;
  ro.lower_bound = kRequestIdPrefix;
  ro.upper_bound = mvcc::PrefixSuccessor(kRequestIdPrefix);
  auto it = engine_->NewIterator(ro, kMeta);
  storage::WriteBatch expired;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    auto rec = DecodeRecord(it->value());
    if (!rec.ok() || rec->created_ms + options_.request_id_ttl_ms < now) {
      expired.Delete(kMeta, it->key());
    }
    if (expired.Count() >= 1000) {
      RETURN_IF_ERROR(engine_->Write({.sync = false}, expired));
      expired.Clear();
    }
  }
  RETURN_IF_ERROR(it->status());
  if (expired.Count() > 0) RETURN_IF_ERROR(engine_->Write({.sync = false}, expired));
  return Status::OK();
}

void KvStore::MaintenanceLoop() {
  std::unique_lock lock(bg_mu_);
  while (!bg_cv_.wait_for(lock, std::chrono::milliseconds(options_.maintenance_interval_ms),
                          [&] { return stopping_; })) {
    lock.unlock();
    (void)RunMaintenance();  // retried next round; failures surface in engine stats
    lock.lock();
  }
}

}  // namespace gojodb::kv
