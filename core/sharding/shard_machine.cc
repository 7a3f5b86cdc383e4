#include "core/sharding/shard_machine.h"

#include <algorithm>

#include "core/mvcc/key_codec.h"

namespace gojodb::sharding {
namespace {

constexpr auto kMeta = storage::ColumnFamily::kMeta;
constexpr auto kRows = mvcc::kVersionCf;
constexpr auto kLocks = txn::kLockCf;
constexpr char kWriteTag = 'W';
constexpr char kFenceTag = 'F';
constexpr char kDescribeTag = 'D';
constexpr char kSplitTag = 'S';
constexpr char kExpireTag = 'X';
constexpr char kTxnTag = 'T';  // then one of:
constexpr char kPrewriteOp = 'P';
constexpr char kCommitOp = 'C';
constexpr char kRollbackOp = 'R';
constexpr char kCheckStatusOp = 'S';
constexpr char kHeartbeatOp = 'H';
constexpr char kGcTag = 'G';
constexpr char kDropRowsTag = 'R';
constexpr std::string_view kRequestPrefix = "sQ";
// 1: rows and request records; 2: and the range's locks and rollback markers; 3: and
// the GC fence.
constexpr uint32_t kSnapshotVersion = 3;

// Length-prefixed binary fields, read back with mvcc::FieldReader (which never reads
// past the input).
class Writer {
 public:
  void U8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void U64(uint64_t v) { mvcc::AppendUint64(&out_, v); }
  void Bytes(std::string_view b) {
    mvcc::AppendUint32(&out_, static_cast<uint32_t>(b.size()));
    out_.append(b);
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

using Reader = mvcc::FieldReader;

void WriteDescriptor(Writer* w, const ShardRecord& d) {
  w->U64(d.id);
  w->Bytes(d.start_key);
  w->Bytes(d.end_key);
  w->U64(d.epoch.conf_ver);
  w->U64(d.epoch.version);
  w->U64(d.replicas.size());
  for (const auto& r : d.replicas) {
    w->U64(r.node);
    w->U8(r.learner ? 1 : 0);
  }
  w->U64(d.leader);
}

bool ReadDescriptor(Reader* r, ShardRecord* d) {
  uint64_t n = 0;
  if (!r->U64(&d->id) || !r->Bytes(&d->start_key) || !r->Bytes(&d->end_key) ||
      !r->U64(&d->epoch.conf_ver) || !r->U64(&d->epoch.version) || !r->U64(&n) || n > 1000) {
    return false;
  }
  d->replicas.resize(n);
  for (auto& rep : d->replicas) {
    uint8_t learner = 0;
    if (!r->U64(&rep.node) || !r->U8(&learner)) return false;
    rep.learner = learner != 0;
  }
  return r->U64(&d->leader);
}

std::string RequestKey(std::string_view row_key, std::string_view request_id) {
  std::string k(kRequestPrefix);
  k.append(row_key);
  k.append(request_id);
  return k;
}

// The meta-key range of the request records of rows in [start, end).
std::pair<std::string, std::string> RequestRange(const ShardRecord& d) {
  std::string lo = std::string(kRequestPrefix) + d.start_key;
  std::string hi = d.end_key.empty() ? mvcc::PrefixSuccessor(kRequestPrefix)
                                     : std::string(kRequestPrefix) + d.end_key;
  return {lo, hi};
}

struct RequestRecord {
  uint64_t fingerprint = 0;
  uint64_t version = 0;
  uint64_t created_ms = 0;
  bool existed = false;
};

std::string EncodeRequest(const RequestRecord& r) {
  Writer w;
  w.U64(r.fingerprint);
  w.U64(r.version);
  w.U64(r.created_ms);
  w.U8(r.existed ? 1 : 0);
  return w.Take();
}

bool DecodeRequest(std::string_view in, RequestRecord* r) {
  Reader rd(in);
  uint8_t existed = 0;
  if (!rd.U64(&r->fingerprint) || !rd.U64(&r->version) || !rd.U64(&r->created_ms) ||
      !rd.U8(&existed) || !rd.done()) {
    return false;
  }
  r->existed = existed != 0;
  return true;
}

// The GC fence is a later field: a record without it has fence 0.
std::string EncodeApplied(uint64_t applied, uint64_t max_ts, bool described, uint64_t gc_fence) {
  Writer w;
  w.U64(applied);
  w.U64(max_ts);
  w.U8(described ? 1 : 0);
  w.U64(gc_fence);
  return w.Take();
}

}  // namespace

std::pair<std::string, std::string> RowRange(const ShardRecord& d) {
  return {d.start_key,
          d.end_key.empty() ? mvcc::PrefixSuccessor(std::string(1, mvcc::kRowTag)) : d.end_key};
}

std::string AppliedKey(uint64_t shard) {
  std::string k = "sA";
  mvcc::AppendUint64(&k, shard);
  return k;
}

std::string DescriptorKey(uint64_t shard) {
  std::string k(kDescriptorPrefix);
  mvcc::AppendUint64(&k, shard);
  return k;
}

bool InRange(const ShardRecord& d, std::string_view row_key) {
  return row_key >= d.start_key && (d.end_key.empty() || row_key < d.end_key);
}

bool RangesOverlap(const ShardRecord& a, const ShardRecord& b) {
  const bool a_before_b = !a.end_key.empty() && a.end_key <= b.start_key;
  const bool b_before_a = !b.end_key.empty() && b.end_key <= a.start_key;
  return !a_before_b && !b_before_a;
}

std::string EncodeWriteCommand(const WriteCommand& c) {
  Writer w;
  w.U8(kWriteTag);
  w.U64(c.ts);
  w.Bytes(c.request_id);
  w.U64(c.fingerprint);
  w.U64(c.created_ms);
  w.U64(c.mutations.size());
  for (const auto& m : c.mutations) {
    w.U8((m.is_delete ? 1 : 0) | (m.if_version ? 2 : 0));
    w.Bytes(m.row_key);
    w.Bytes(m.value);
    w.U64(m.if_version.value_or(0));
  }
  if (c.start_ts != 0) w.U64(c.start_ts);  // optional: entries written before it lack it
  return w.Take();
}

namespace {
void WriteRows(Writer* w, const std::vector<std::string>& rows) {
  w->U64(rows.size());
  for (const auto& r : rows) w->Bytes(r);
}
bool ReadRows(Reader* r, std::vector<std::string>* rows) {
  uint64_t n = 0;
  if (!r->U64(&n) || n > r->remaining() / 4) return false;
  rows->resize(n);
  for (auto& row : *rows) {
    if (!r->Bytes(&row)) return false;
  }
  return true;
}
}  // namespace

bool IsPrewriteCommand(std::string_view command) {
  return command.size() >= 2 && command[0] == kTxnTag && command[1] == kPrewriteOp;
}

std::string EncodePrewriteCommand(const txn::PrewriteRequest& r) {
  Writer w;
  w.U8(kTxnTag);
  w.U8(kPrewriteOp);
  w.U64(r.start_ts);
  w.Bytes(r.primary);
  w.U64(r.ttl_ms);
  w.U64(r.mutations.size());
  for (const auto& m : r.mutations) {
    w.U8(static_cast<uint8_t>(m.kind));
    w.U8(m.if_version ? 1 : 0);
    w.U64(m.if_version.value_or(0));
    w.Bytes(m.row_key);
    w.Bytes(m.value);
  }
  return w.Take();
}

std::string EncodeTxnCommitCommand(uint64_t start_ts, uint64_t commit_ts,
                                   const std::vector<std::string>& rows, bool primary) {
  Writer w;
  w.U8(kTxnTag);
  w.U8(kCommitOp);
  w.U64(start_ts);
  w.U64(commit_ts);
  w.U8(primary ? 1 : 0);
  WriteRows(&w, rows);
  return w.Take();
}

std::string EncodeTxnRollbackCommand(uint64_t start_ts, const std::vector<std::string>& rows) {
  Writer w;
  w.U8(kTxnTag);
  w.U8(kRollbackOp);
  w.U64(start_ts);
  WriteRows(&w, rows);
  return w.Take();
}

std::string EncodeCheckTxnStatusCommand(const txn::CheckStatusRequest& r) {
  Writer w;
  w.U8(kTxnTag);
  w.U8(kCheckStatusOp);
  w.Bytes(r.primary);
  w.U64(r.start_ts);
  w.U64(r.current_ts);
  w.U64(r.caller_ts);
  w.U8(r.rollback_if_missing ? 1 : 0);
  return w.Take();
}

std::string EncodeTxnHeartbeatCommand(std::string_view primary, uint64_t start_ts,
                                      uint64_t ttl_ms) {
  Writer w;
  w.U8(kTxnTag);
  w.U8(kHeartbeatOp);
  w.Bytes(primary);
  w.U64(start_ts);
  w.U64(ttl_ms);
  return w.Take();
}

std::string EncodeExpireRequestsCommand(uint64_t cutoff_ms, std::string_view resume_after,
                                        uint64_t max_examine) {
  Writer w;
  w.U8(kExpireTag);
  w.U64(cutoff_ms);
  w.Bytes(resume_after);
  w.U64(max_examine);
  return w.Take();
}

std::string EncodeGcFenceCommand(uint64_t fence) {
  Writer w;
  w.U8(kGcTag);
  w.U64(fence);
  return w.Take();
}

std::string EncodeDropRowsCommand(uint32_t tenant, uint32_t id) {
  Writer w;
  w.U8(kDropRowsTag);
  w.U64(tenant);
  w.U64(id);
  return w.Take();
}

std::string EncodeFenceCommand(uint64_t ts) {
  Writer w;
  w.U8(kFenceTag);
  w.U64(ts);
  return w.Take();
}

std::string EncodeDescribeCommand(const ShardRecord& d) {
  Writer w;
  w.U8(kDescribeTag);
  WriteDescriptor(&w, d);
  return w.Take();
}

std::string EncodeSplitCommand(uint64_t expected_version, std::string_view split_key,
                               uint64_t new_id) {
  Writer w;
  w.U8(kSplitTag);
  w.U64(expected_version);
  w.Bytes(split_key);
  w.U64(new_id);
  return w.Take();
}

std::string ChildKey(uint64_t shard) {
  std::string k(kChildPrefix);
  mvcc::AppendUint64(&k, shard);
  return k;
}

std::string DroppedRangeKey(std::string_view lo, std::string_view hi) {
  std::string k(kDroppedRangePrefix);
  k.reserve(k.size() + 4 + lo.size() + hi.size());
  mvcc::AppendUint32(&k, static_cast<uint32_t>(lo.size()));
  k.append(lo);
  k.append(hi);
  return k;
}

Result<std::pair<std::string, std::string>> DecodeDroppedRangeKey(std::string_view key) {
  if (key.substr(0, kDroppedRangePrefix.size()) != kDroppedRangePrefix ||
      key.size() < kDroppedRangePrefix.size() + 4) {
    return Status::DataLoss("malformed dropped-range record");
  }
  key.remove_prefix(kDroppedRangePrefix.size());
  const uint32_t lo_size = mvcc::ReadUint32(key);
  key.remove_prefix(4);
  if (lo_size > key.size()) return Status::DataLoss("malformed dropped-range record");
  return std::pair<std::string, std::string>(key.substr(0, lo_size), key.substr(lo_size));
}

namespace {
std::string EncodeChild(const SplitChild& c) {
  Writer w;
  WriteDescriptor(&w, c.descriptor);
  w.U64(c.max_ts);
  w.U64(c.gc_fence);
  return w.Take();
}
}  // namespace

Result<SplitChild> DecodeChild(std::string_view in) {
  Reader r(in);
  SplitChild c;
  if (!ReadDescriptor(&r, &c.descriptor) || !r.U64(&c.max_ts) ||
      (!r.done() && !r.U64(&c.gc_fence)) || !r.done()) {
    return Status::Corruption("malformed split child record");
  }
  return c;
}

ShardRecord Uninitialized(uint64_t shard) {
  ShardRecord d;
  d.id = shard;
  d.epoch = {0, 0};
  return d;
}

std::string EncodeOutcome(const WriteOutcome& o) {
  Writer w;
  w.U8(static_cast<uint8_t>(o.code));
  w.U64(o.version);
  w.U8(o.existed ? 1 : 0);
  w.U64(o.current_version);
  w.U64(o.max_ts);
  w.Bytes(o.message);
  w.Bytes(o.resume_after);
  const txn::TxnOutcome& t = o.txn;
  w.U8(static_cast<uint8_t>(t.error));
  w.Bytes(t.message);
  w.Bytes(t.row_key);
  w.Bytes(t.lock ? txn::EncodeLock(*t.lock) : std::string());
  w.U64(t.conflict_ts);
  w.U64(t.commit_ts);
  w.U64(t.min_commit_ts);
  w.U8(static_cast<uint8_t>(t.state));
  return w.Take();
}

Result<WriteOutcome> DecodeOutcome(std::string_view in) {
  Reader r(in);
  WriteOutcome o;
  uint8_t code = 0, existed = 0;
  if (!r.U8(&code) || !r.U64(&o.version) || !r.U8(&existed) || !r.U64(&o.current_version) ||
      !r.U64(&o.max_ts) || !r.Bytes(&o.message) || !r.Bytes(&o.resume_after)) {
    return Status::Corruption("malformed shard command outcome");
  }
  txn::TxnOutcome& t = o.txn;
  uint8_t error = 0, state = 0;
  std::string_view lock;
  if (!r.U8(&error) || !r.Bytes(&t.message) || !r.Bytes(&t.row_key) || !r.Bytes(&lock) ||
      !r.U64(&t.conflict_ts) || !r.U64(&t.commit_ts) || !r.U64(&t.min_commit_ts) || !r.U8(&state) ||
      !r.done() || error > uint8_t(txn::TxnError::kTooOld) ||
      state > uint8_t(txn::TxnState::kNotFound)) {
    return Status::Corruption("malformed shard command outcome");
  }
  t.error = static_cast<txn::TxnError>(error);
  t.state = static_cast<txn::TxnState>(state);
  if (!lock.empty()) {
    auto l = txn::DecodeLock(lock);
    if (!l.ok()) return Status::Corruption("malformed shard command outcome");
    t.lock = std::move(*l);
  }
  o.code = static_cast<StatusCode>(code);
  o.existed = existed != 0;
  return o;
}

std::string EncodeDescriptor(const ShardRecord& d) {
  Writer w;
  WriteDescriptor(&w, d);
  return w.Take();
}

Result<ShardRecord> DecodeDescriptor(std::string_view in) {
  Reader r(in);
  ShardRecord d;
  if (!ReadDescriptor(&r, &d) || !r.done()) return Status::Corruption("malformed shard descriptor");
  return d;
}

// --- ShardMachine -------------------------------------------------------------------------

Result<std::unique_ptr<ShardMachine>> ShardMachine::Load(storage::Engine* engine, uint64_t shard) {
  ASSIGN_OR_RETURN(auto desc_bytes, engine->Get({}, kMeta, DescriptorKey(shard)));
  if (!desc_bytes) return Status::NotFound("shard " + std::to_string(shard) + " is not here");
  ASSIGN_OR_RETURN(ShardRecord d, DecodeDescriptor(*desc_bytes));
  uint64_t applied = 0, max_ts = 0, gc_fence = 0;
  uint8_t described = 0;
  ASSIGN_OR_RETURN(auto applied_bytes, engine->Get({}, kMeta, AppliedKey(shard)));
  if (applied_bytes) {
    Reader r(*applied_bytes);
    if (!r.U64(&applied) || !r.U64(&max_ts) || !r.U8(&described) ||
        (!r.done() && !r.U64(&gc_fence))) {
      return Status::Corruption("shard " + std::to_string(shard) + ": malformed applied record");
    }
  }
  auto m = std::unique_ptr<ShardMachine>(
      new ShardMachine(engine, std::move(d), applied, max_ts, described != 0));
  m->gc_fence_.store(gc_fence);
  return m;
}

Result<std::unique_ptr<ShardMachine>> ShardMachine::Create(storage::Engine* engine,
                                                           const ShardRecord& descriptor,
                                                           uint64_t applied) {
  const bool described = applied > 0;  // the descriptor is the state at that index
  storage::WriteBatch b;
  b.Put(kMeta, DescriptorKey(descriptor.id), EncodeDescriptor(descriptor));
  b.Put(kMeta, AppliedKey(descriptor.id), EncodeApplied(applied, 0, described, 0));
  RETURN_IF_ERROR(engine->Write({.sync = true}, b));
  return std::unique_ptr<ShardMachine>(new ShardMachine(engine, descriptor, applied, 0, described));
}

Status ShardMachine::Destroy(storage::Engine* engine, const ShardRecord& d,
                             const std::vector<ShardRecord>& keep) {
  storage::WriteBatch b;
  if (Initialized(d)) {
    // The range minus the ranges of `keep`: a replica that fell behind may still think
    // its range reaches into shards split off it, whose rows are not its to delete.
    auto [lo, hi] = RowRange(d);
    std::vector<std::pair<std::string, std::string>> pieces = {{lo, hi}};
    for (const auto& k : keep) {
      if (!Initialized(k) || k.id == d.id) continue;
      auto [klo, khi] = RowRange(k);
      std::vector<std::pair<std::string, std::string>> next;
      for (const auto& [plo, phi] : pieces) {
        if (khi <= plo || phi <= klo) {
          next.emplace_back(plo, phi);
          continue;
        }
        if (plo < klo) next.emplace_back(plo, klo);
        if (khi < phi) next.emplace_back(khi, phi);
      }
      pieces = std::move(next);
    }
    for (const auto& [plo, phi] : pieces) {
      b.DeleteRange(kRows, plo, phi);
      b.DeleteRange(kLocks, plo, phi);
      b.DeleteRange(kMeta, std::string(kRequestPrefix) + plo, std::string(kRequestPrefix) + phi);
    }
  }
  b.Delete(kMeta, DescriptorKey(d.id));
  b.Delete(kMeta, AppliedKey(d.id));
  return engine->Write({.sync = true}, b);
}

ShardRecord ShardMachine::descriptor() const {
  std::lock_guard lock(mu_);
  return desc_;
}

Status ShardMachine::ApplyConfState(consensus::LogIndex index, const consensus::ConfState& conf) {
  ShardRecord d = descriptor();
  d.replicas.clear();
  // Voters of a joint configuration's outgoing half stay voters until it is left.
  std::vector<consensus::NodeId> voters = conf.voters;
  for (auto v : conf.voters_outgoing) {
    if (std::find(voters.begin(), voters.end(), v) == voters.end()) voters.push_back(v);
  }
  std::sort(voters.begin(), voters.end());
  for (auto v : voters) d.replicas.push_back({v.value(), false});
  std::vector<consensus::NodeId> learners = conf.learners;
  learners.insert(learners.end(), conf.learners_next.begin(), conf.learners_next.end());
  std::sort(learners.begin(), learners.end());
  for (auto l : learners) d.replicas.push_back({l.value(), true});
  d.epoch.conf_ver++;
  storage::WriteBatch b;
  b.Put(kMeta, DescriptorKey(id_), EncodeDescriptor(d));
  StageApplied(&b, std::max(index.value(), applied_.load()), max_ts_.load());
  // Synced: Raft has recorded the configuration, and never applies this entry again.
  RETURN_IF_ERROR(engine_->Write({.sync = true}, b));
  applied_.store(std::max(index.value(), applied_.load()));
  std::lock_guard lock(mu_);
  desc_ = std::move(d);
  return Status::OK();
}

void ShardMachine::StageApplied(storage::WriteBatch* batch, uint64_t index, uint64_t max_ts) {
  batch->Put(kMeta, AppliedKey(id_),
             EncodeApplied(index, max_ts, described_.load(), gc_fence_.load()));
}

Status ShardMachine::Apply(consensus::LogIndex index, std::string_view data) {
  std::string ignored;
  return ApplyCommand(index, data, &ignored);
}

void ShardMachine::RecordRecentWrites(const storage::WriteBatch& batch) {
  if (!recent_) return;
  if (recent_consulted_) {
    recent_idle_ = 0;
  } else if (++recent_idle_ >= kRecentWritesIdle) {
    recent_.reset();  // no bulk writes lately: its memory back
    return;
  }
  // Every version the command writes, whatever the command (versions are written nowhere
  // else, but Restore, which forgets the table).
  for (const auto& op : batch.ops()) {
    if (op.cf != kRows || op.type != storage::WriteBatch::OpType::kPut || op.key.size() < 8) {
      continue;
    }
    const std::string_view key = op.key;
    recent_->Record(key.substr(0, key.size() - 8), ~mvcc::ReadUint64(key.substr(key.size() - 8)));
  }
}

Status ShardMachine::ApplyCommand(consensus::LogIndex index, std::string_view data,
                                  std::string* result) {
  recent_consulted_ = false;
  storage::WriteBatch batch;
  WriteOutcome out;
  uint64_t max_ts = max_ts_.load();
  uint64_t child = 0;
  ShardRecord shrunk;  // with a split: this shard's range after it
  uint64_t new_fence = 0;
  std::pair<std::string, std::string> dropped;  // DropRows: the rows deleted
  if (!data.empty() && data[0] == kWriteTag) {
    RETURN_IF_ERROR(ApplyWrite(&batch, data.substr(1), &out));
    if (out.code == StatusCode::kOk && out.version > max_ts) max_ts = out.version;
  } else if (!data.empty() && data[0] == kFenceTag) {
    Reader r(data.substr(1));
    uint64_t ts = 0;
    if (!r.U64(&ts)) return Status::Corruption("malformed fence command");
    max_ts = std::max(max_ts, ts);
  } else if (!data.empty() && data[0] == kSplitTag) {
    ASSIGN_OR_RETURN(child, ApplySplit(&batch, data.substr(1), &out, &shrunk));
  } else if (!data.empty() && data[0] == kTxnTag) {
    ASSIGN_OR_RETURN(uint64_t commit_ts, ApplyTxn(&batch, data.substr(1), &out));
    max_ts = std::max(max_ts, commit_ts);
  } else if (!data.empty() && data[0] == kExpireTag) {
    RETURN_IF_ERROR(ApplyExpireRequests(&batch, data.substr(1), &out));
  } else if (!data.empty() && data[0] == kGcTag) {
    Reader r(data.substr(1));
    uint64_t fence = 0;
    if (!r.U64(&fence) || !r.done()) return Status::Corruption("malformed GC fence command");
    const ShardRecord d = descriptor();
    if (fence > gc_fence_.load() && Initialized(d)) {
      auto [lo, hi] = RowRange(d);
      txn::TxnRows rows(engine_);
      ASSIGN_OR_RETURN(out.version, rows.DropMarkersBelow(lo, hi, fence, &batch));
      new_fence = fence;
    }
  } else if (!data.empty() && data[0] == kDropRowsTag) {
    RETURN_IF_ERROR(ApplyDropRows(&batch, data.substr(1), &out, &dropped));
  } else if (!data.empty() && data[0] == kDescribeTag) {
    Reader r(data.substr(1));
    ShardRecord d;
    if (!ReadDescriptor(&r, &d) || !r.done() || d.id != id_) {
      return Status::Corruption("malformed describe command");
    }
    described_.store(true);
    if (!Initialized(descriptor())) {
      batch.Put(kMeta, DescriptorKey(id_), EncodeDescriptor(d));
      std::lock_guard lock(mu_);
      desc_ = std::move(d);
    }
  } else {
    // A command this binary does not know: stopping is safer than diverging.
    return Status::Corruption("unknown shard command");
  }
  out.max_ts = max_ts;
  RecordRecentWrites(batch);
  // Published before the write: a read checks the fence after it has read, so it never
  // trusts rows the fence's GC may already be collecting.
  if (new_fence != 0) gc_fence_.store(new_fence);
  StageApplied(&batch, index.value(), max_ts);
  // Not synced: the Raft log is, and replay from the applied index restores a lost tail.
  RETURN_IF_ERROR(engine_->Write({.sync = false}, batch));
  if (child != 0) {
    // Shrunk only now that the new shard's record is written: a node looking for who
    // holds a range finds the parent or the record, never neither.
    std::lock_guard lock(mu_);
    desc_ = std::move(shrunk);
  }
  applied_.store(index.value());
  max_ts_.store(max_ts);
  *result = EncodeOutcome(out);
  if (child != 0) split_since_snapshot_ = true;
  if (child != 0 && on_split_) on_split_(child);
  if (!dropped.first.empty() && on_rows_dropped_) {
    on_rows_dropped_(std::move(dropped.first), std::move(dropped.second));
  }
  return Status::OK();
}

Result<uint64_t> ShardMachine::ApplySplit(storage::WriteBatch* batch, std::string_view body,
                                          WriteOutcome* out, ShardRecord* shrunk) {
  Reader r(body);
  uint64_t expected = 0, new_id = 0;
  std::string key;
  if (!r.U64(&expected) || !r.Bytes(&key) || !r.U64(&new_id) || !r.done()) {
    return Status::Corruption("malformed split command");
  }
  ShardRecord d = descriptor();
  auto refuse = [&](std::string why) -> Result<uint64_t> {
    out->code = StatusCode::kFailedPrecondition;
    out->message = "split of shard " + std::to_string(id_) + " refused: " + why;
    return uint64_t{0};
  };
  if (!Initialized(d)) return refuse("the replica has no range yet");
  if (d.epoch.version != expected) {
    return refuse("version " + std::to_string(expected) + " is not the current " +
                  std::to_string(d.epoch.version));
  }
  if (key <= d.start_key || (!d.end_key.empty() && key >= d.end_key)) {
    return refuse("the split key is not strictly inside the range");
  }
  if (new_id == 0 || new_id == id_) return refuse("bad new shard id");
  SplitChild c;
  c.descriptor.id = new_id;
  c.descriptor.start_key = key;
  c.descriptor.end_key = d.end_key;
  c.descriptor.epoch = {d.epoch.conf_ver, d.epoch.version + 1};
  c.descriptor.replicas = d.replicas;
  c.max_ts = max_ts_.load();
  c.gc_fence = gc_fence_.load();
  d.end_key = key;
  d.epoch.version++;
  batch->Put(kMeta, DescriptorKey(id_), EncodeDescriptor(d));
  batch->Put(kMeta, ChildKey(new_id), EncodeChild(c));
  *shrunk = std::move(d);
  return new_id;
}

Status ShardMachine::ApplyExpireRequests(storage::WriteBatch* batch, std::string_view body,
                                         WriteOutcome* out) {
  Reader r(body);
  uint64_t cutoff_ms = 0, max_examine = 0;
  std::string after;
  if (!r.U64(&cutoff_ms) || !r.Bytes(&after) || !r.U64(&max_examine) || !r.done() ||
      max_examine == 0) {
    return Status::Corruption("malformed expire-requests command");
  }
  const ShardRecord d = descriptor();
  if (!Initialized(d)) return Status::OK();
  auto [lo, hi] = RequestRange(d);
  if (!after.empty()) {
    after.push_back('\0');  // the first key after it
    if (after > lo) lo = std::move(after);
  }
  if (lo >= hi) return Status::OK();
  storage::ReadOptions ro;
  ro.lower_bound = lo;
  ro.upper_bound = hi;
  auto it = engine_->NewIterator(ro, kMeta);
  uint64_t examined = 0, deleted = 0;
  std::string last;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (examined == max_examine) {
      out->resume_after = std::move(last);  // more remain: the next command goes on after it
      break;
    }
    ++examined;
    last.assign(it->key());
    RequestRecord rec;
    if (!DecodeRequest(it->value(), &rec)) return Status::Corruption("malformed request record");
    if (rec.created_ms < cutoff_ms) {
      batch->Delete(kMeta, it->key());
      ++deleted;
    }
  }
  RETURN_IF_ERROR(it->status());
  out->version = deleted;
  return Status::OK();
}

Status ShardMachine::ApplyDropRows(storage::WriteBatch* batch, std::string_view body,
                                   WriteOutcome* out,
                                   std::pair<std::string, std::string>* dropped) {
  Reader r(body);
  uint64_t tenant = 0, id = 0;
  if (!r.U64(&tenant) || !r.U64(&id) || !r.done()) {
    return Status::Corruption("malformed drop-rows command");
  }
  if (id == 0 || tenant > UINT32_MAX || id > UINT32_MAX) {
    out->code = StatusCode::kInvalidArgument;
    out->message = "drop-rows names no collection";
    return Status::OK();
  }
  const ShardRecord d = descriptor();
  if (!Initialized(d)) {
    out->code = StatusCode::kFailedPrecondition;
    out->message = "the replica has no range yet";
    return Status::OK();
  }
  // The epoch the deletion covered: the whole range of the shard at this version.
  out->current_version = d.epoch.version;
  const std::string prefix =
      mvcc::CollectionPrefix(static_cast<uint32_t>(tenant), static_cast<uint32_t>(id));
  auto [lo, hi] = RowRange(d);
  lo = std::max(lo, prefix);
  hi = std::min(hi, mvcc::PrefixSuccessor(prefix));
  if (lo >= hi) return Status::OK();  // the shard holds none of them
  batch->DeleteRange(kRows, lo, hi);
  batch->DeleteRange(kLocks, lo, hi);
  batch->DeleteRange(kMeta, std::string(kRequestPrefix) + lo, std::string(kRequestPrefix) + hi);
  // Until the Store has compacted the range (after a restart too).
  batch->Put(kMeta, DroppedRangeKey(lo, hi), "");
  out->version = 1;  // something of the range was in the shard
  *dropped = {std::move(lo), std::move(hi)};
  return Status::OK();
}

Status ShardMachine::FoundChild(storage::Engine* engine, const SplitChild& c) {
  storage::WriteBatch b;
  b.Put(kMeta, DescriptorKey(c.descriptor.id), EncodeDescriptor(c.descriptor));
  b.Put(kMeta, AppliedKey(c.descriptor.id),
        EncodeApplied(kInitialLogIndex, c.max_ts, true, c.gc_fence));
  b.Delete(kMeta, ChildKey(c.descriptor.id));
  return engine->Write({.sync = true}, b);
}

Result<uint64_t> ShardMachine::ApplyTxn(storage::WriteBatch* batch, std::string_view body,
                                        WriteOutcome* out) {
  Reader r(body);
  uint8_t op = 0;
  if (!r.U8(&op)) return Status::Corruption("malformed transaction command");
  const ShardRecord d = descriptor();
  auto out_of_range = [&](std::string_view row) {
    if (InRange(d, row)) return false;
    out->code = StatusCode::kOutOfRange;
    out->message = "key is outside shard " + std::to_string(d.id) + "'s range";
    return true;
  };
  auto any_out_of_range = [&](const std::vector<std::string>& rows) {
    for (const auto& row : rows) {
      if (out_of_range(row)) return true;
    }
    return false;
  };
  txn::TxnRows rows(engine_);
  storage::WriteBatch staged;
  uint64_t committed_at = 0;
  Result<txn::TxnOutcome> result = txn::TxnOutcome{};
  switch (op) {
    case kPrewriteOp: {
      txn::PrewriteRequest p;
      uint64_t n = 0;
      if (!r.U64(&p.start_ts) || !r.Bytes(&p.primary) || !r.U64(&p.ttl_ms) || !r.U64(&n) ||
          n > r.remaining() / 18) {
        return Status::Corruption("malformed prewrite command");
      }
      p.mutations.resize(n);
      for (auto& m : p.mutations) {
        uint8_t kind = 0, has_if = 0;
        uint64_t if_version = 0;
        if (!r.U8(&kind) || !r.U8(&has_if) || !r.U64(&if_version) || !r.Bytes(&m.row_key) ||
            !r.Bytes(&m.value) ||
            (kind != uint8_t(txn::LockKind::kPut) && kind != uint8_t(txn::LockKind::kDelete) &&
             kind != uint8_t(txn::LockKind::kCheck))) {
          return Status::Corruption("malformed prewrite command");
        }
        m.kind = static_cast<txn::LockKind>(kind);
        if (has_if) m.if_version = if_version;
      }
      if (!r.done()) return Status::Corruption("malformed prewrite command");
      for (const auto& m : p.mutations) {
        if (out_of_range(m.row_key)) return uint64_t{0};
      }
      if (p.start_ts < gc_fence_.load()) {
        // The GC may collect what this transaction's snapshot reads, and resolvers treat
        // every lock below the fence as abandoned: it cannot lock rows here any more.
        txn::TxnOutcome refused;
        refused.error = txn::TxnError::kTooOld;
        refused.message = "transaction " + std::to_string(p.start_ts) +
                          " started before the GC safe point " + std::to_string(gc_fence_.load()) +
                          "; retry it as a new transaction";
        result = std::move(refused);
        break;
      }
      result = rows.Prewrite(p, max_ts_.load(), &staged);
      break;
    }
    case kCommitOp: {
      uint64_t start_ts = 0, commit_ts = 0;
      uint8_t primary = 0;
      std::vector<std::string> keys;
      if (!r.U64(&start_ts) || !r.U64(&commit_ts) || !r.U8(&primary) || !ReadRows(&r, &keys) ||
          !r.done()) {
        return Status::Corruption("malformed commit command");
      }
      if (any_out_of_range(keys)) return uint64_t{0};
      result = rows.Commit(start_ts, commit_ts, keys, primary != 0, &staged);
      if (result.ok() && result->ok()) committed_at = commit_ts;
      break;
    }
    case kRollbackOp: {
      uint64_t start_ts = 0;
      std::vector<std::string> keys;
      if (!r.U64(&start_ts) || !ReadRows(&r, &keys) || !r.done()) {
        return Status::Corruption("malformed rollback command");
      }
      if (any_out_of_range(keys)) return uint64_t{0};
      result = rows.Rollback(start_ts, keys, &staged);
      break;
    }
    case kCheckStatusOp: {
      txn::CheckStatusRequest c;
      uint8_t rollback = 0;
      if (!r.Bytes(&c.primary) || !r.U64(&c.start_ts) || !r.U64(&c.current_ts) ||
          !r.U64(&c.caller_ts) || !r.U8(&rollback) || !r.done()) {
        return Status::Corruption("malformed check-status command");
      }
      c.rollback_if_missing = rollback != 0;
      if (out_of_range(c.primary)) return uint64_t{0};
      result = rows.CheckTxnStatus(c, &staged);
      break;
    }
    case kHeartbeatOp: {
      std::string primary;
      uint64_t start_ts = 0, ttl_ms = 0;
      if (!r.Bytes(&primary) || !r.U64(&start_ts) || !r.U64(&ttl_ms) || !r.done()) {
        return Status::Corruption("malformed heartbeat command");
      }
      if (out_of_range(primary)) return uint64_t{0};
      result = rows.Heartbeat(primary, start_ts, ttl_ms, &staged);
      break;
    }
    default:
      return Status::Corruption("unknown transaction command");
  }
  // A failed read of the engine here would fail on every replica alike only by chance:
  // stop rather than diverge.
  if (!result.ok()) return result.status();
  out->txn = std::move(*result);
  if (out->txn.ok()) batch->Append(std::move(staged));
  return committed_at;
}

Status ShardMachine::ApplyWrite(storage::WriteBatch* batch, std::string_view body,
                                WriteOutcome* out) {
  Reader r(body);
  WriteCommand c;
  uint64_t n = 0;
  if (!r.U64(&c.ts) || !r.Bytes(&c.request_id) || !r.U64(&c.fingerprint) || !r.U64(&c.created_ms) ||
      !r.U64(&n)) {
    return Status::Corruption("malformed write command");
  }
  // Each mutation takes at least 17 bytes (flags, two lengths, a version): a count the
  // input cannot hold is damage, not a reason to allocate.
  if (n > r.remaining() / 17) return Status::Corruption("malformed write command");
  // The rows and values stay in `body` (the log entry, alive for the whole apply): read
  // as views, they are copied once, into the batch.
  struct MutationView {
    bool is_delete = false;
    std::string_view row_key, value;
    std::optional<uint64_t> if_version;
  };
  std::vector<MutationView> muts(n);
  for (auto& m : muts) {
    uint8_t flags = 0;
    uint64_t v = 0;
    if (!r.U8(&flags) || !r.Bytes(&m.row_key) || !r.Bytes(&m.value) || !r.U64(&v)) {
      return Status::Corruption("malformed write command");
    }
    m.is_delete = (flags & 1) != 0;
    if (flags & 2) m.if_version = v;
  }
  if (!r.done() && !r.U64(&c.start_ts)) {
    return Status::Corruption("malformed write command");
  }
  if (!r.done() || muts.empty()) return Status::Corruption("malformed write command");

  const ShardRecord d = descriptor();
  for (const auto& m : muts) {
    if (!InRange(d, m.row_key)) {
      out->code = StatusCode::kOutOfRange;
      out->message = "key is outside shard " + std::to_string(d.id) + "'s range";
      return Status::OK();
    }
  }
  // A retry of a request that already applied answers as the first attempt did.
  std::string request_key;
  if (!c.request_id.empty()) {
    request_key = RequestKey(muts[0].row_key, c.request_id);
    ASSIGN_OR_RETURN(auto prior, engine_->Get({}, kMeta, request_key));
    if (prior) {
      RequestRecord rec;
      if (!DecodeRequest(*prior, &rec)) return Status::Corruption("malformed request record");
      if (rec.fingerprint != c.fingerprint) {
        out->code = StatusCode::kInvalidArgument;
        out->message = "request id '" + c.request_id + "' was already used for a different request";
      } else {
        out->version = rec.version;
        out->existed = rec.existed;
      }
      return Status::OK();
    }
  }
  if (c.start_ts >= c.ts) {
    out->code = StatusCode::kInvalidArgument;
    out->message = "a transaction's commit timestamp must be above its start";
    return Status::OK();
  }
  if (c.ts <= max_ts_.load()) {
    out->code = StatusCode::kAborted;
    out->message = "commit timestamp " + std::to_string(c.ts) + " is not above the shard's " +
                   std::to_string(max_ts_.load());
    return Status::OK();
  }
  mvcc::MvccReader reader(engine_, nullptr);
  txn::TxnRows locks(engine_);
  // A one-phase write takes no locks, so a bulk load's rows seldom have any near them:
  // one seek over the rows' span, and no row's lock is looked up when it finds none.
  const auto [lo, hi] = std::minmax_element(
      muts.begin(), muts.end(),
      [](const MutationView& a, const MutationView& b) { return a.row_key < b.row_key; });
  const bool any_locks = locks.MayHoldLocks(lo->row_key, hi->row_key);
  // Each row in turn: its lock, then (in a transaction) its newest version; the first
  // row that fails decides. The versions come through one iterator.
  bool refused = false;
  auto check = [&](const MutationView& m,
                   const std::optional<mvcc::VersionedValue>& cur) -> Result<bool> {
    // A transaction's lock holds the row until its fate is known: the caller resolves it.
    std::optional<txn::Lock> lock;
    if (any_locks) {
      ASSIGN_OR_RETURN(lock, locks.LockOf(m.row_key));
    }
    if (lock) {
      out->code = StatusCode::kAborted;
      out->message = "the row is locked by transaction " + std::to_string(lock->start_ts);
      out->txn.error = txn::TxnError::kLocked;
      out->txn.row_key = m.row_key;
      out->txn.lock = std::move(lock);
      refused = true;
      return false;
    }
    if (cur && cur->version > c.start_ts) {
      out->code = StatusCode::kAborted;
      out->message = "write conflict: the row was written at " + std::to_string(cur->version) +
                     ", after the transaction started";
      out->txn.error = txn::TxnError::kWriteConflict;
      out->txn.row_key = m.row_key;
      out->txn.conflict_ts = cur->version;
      refused = true;
      return false;
    }
    return true;
  };
  // In a transaction, each row's newest version (any timestamp), for the conflict
  // checks and the conditions below.
  std::vector<std::optional<mvcc::VersionedValue>> newest;
  if (c.start_ts == 0) {
    for (const auto& m : muts) {
      ASSIGN_OR_RETURN(bool go_on, check(m, std::nullopt));
      if (!go_on) break;
    }
  } else {
    // The newest versions in key order (the engine's seeks then walk forward), then the
    // checks in the mutations' order. A row that no recent command wrote has nothing
    // above start_ts (a conflict needs a version above it): it is not read, unless a
    // condition below needs its version.
    if (!recent_ && muts.size() >= kRecentWritesFrom) {
      recent_ = std::make_unique<RecentWrites>(max_ts_.load());  // every version is at or below
    }
    recent_consulted_ = recent_ != nullptr;
    const bool alone = muts.size() == 1;
    std::vector<uint32_t> order;
    order.reserve(muts.size());
    for (uint32_t i = 0; i < muts.size(); ++i) {
      const auto& m = muts[i];
      if (recent_ && !m.if_version && !(m.is_delete && alone) &&
          recent_->NothingAbove(m.row_key, c.start_ts)) {
        continue;
      }
      order.push_back(i);
    }
    std::sort(order.begin(), order.end(),
              [&](uint32_t a, uint32_t b) { return muts[a].row_key < muts[b].row_key; });
    newest.resize(muts.size());
    RETURN_IF_ERROR(reader.GetEach(
        order.size(), [&](size_t k) -> std::string_view { return muts[order[k]].row_key; },
        mvcc::kMaxTimestamp,
        [&](size_t k, std::optional<mvcc::VersionedValue> cur) -> Result<bool> {
          if (cur) cur->value.clear();  // only its version and deletion are looked at
          newest[order[k]] = std::move(cur);
          return true;
        }));
    for (size_t i = 0; i < muts.size(); ++i) {
      ASSIGN_OR_RETURN(bool go_on, check(muts[i], newest[i]));
      if (!go_on) break;
    }
  }
  if (refused) return Status::OK();
  bool existed = false;
  for (size_t i = 0; i < muts.size(); ++i) {
    const auto& m = muts[i];
    if (!m.if_version && !(m.is_delete && muts.size() == 1)) continue;
    std::optional<mvcc::VersionedValue> cur;
    if (!newest.empty()) {
      cur = std::move(newest[i]);  // read above, at the same state of the engine
    } else {
      ASSIGN_OR_RETURN(cur, reader.Get(m.row_key, mvcc::kMaxTimestamp));
    }
    const bool live = cur && !cur->deleted;
    const uint64_t current = live ? cur->version : 0;
    if (muts.size() == 1) existed = live;
    if (m.if_version && *m.if_version != current) {
      out->code = StatusCode::kFailedPrecondition;
      out->current_version = current;
      out->message = "version mismatch: expected " + std::to_string(*m.if_version) + ", current " +
                     std::to_string(current);
      if (muts.size() > 1) out->message = "ops[" + std::to_string(i) + "]: " + out->message;
      return Status::OK();
    }
  }
  for (const auto& m : muts) {
    if (m.is_delete)
      mvcc::DeleteVersion(batch, m.row_key, c.ts);
    else
      mvcc::PutVersion(batch, m.row_key, c.ts, m.value);
  }
  if (!request_key.empty()) {
    batch->Put(kMeta, request_key, EncodeRequest({c.fingerprint, c.ts, c.created_ms, existed}));
  }
  out->version = c.ts;
  out->existed = existed;
  return Status::OK();
}

Result<std::string> ShardMachine::Snapshot() {
  // Called on the loop thread, between applies: the engine's latest state is exactly
  // the state as of Applied().
  const ShardRecord d = descriptor();
  Writer w;
  w.U64(kSnapshotVersion);
  WriteDescriptor(&w, d);
  w.U64(max_ts_.load());
  w.U64(gc_fence_.load());
  auto dump = [&](storage::ColumnFamily cf, std::pair<std::string, std::string> range) -> Status {
    storage::ReadOptions ro;
    ro.lower_bound = range.first;
    ro.upper_bound = range.second;
    auto it = engine_->NewIterator(ro, cf);
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      w.U8(1);
      w.Bytes(it->key());
      w.Bytes(it->value());
    }
    RETURN_IF_ERROR(it->status());
    w.U8(0);
    return Status::OK();
  };
  if (Initialized(d)) {
    RETURN_IF_ERROR(dump(kRows, RowRange(d)));
    RETURN_IF_ERROR(dump(kMeta, RequestRange(d)));
    RETURN_IF_ERROR(dump(kLocks, RowRange(d)));
  } else {
    w.U8(0);
    w.U8(0);
    w.U8(0);
  }
  return w.Take();
}

Result<ShardRecord> SnapshotDescriptor(std::string_view snapshot) {
  Reader r(snapshot);
  uint64_t version = 0;
  ShardRecord d;
  if (!r.U64(&version) || version < 1 || version > kSnapshotVersion || !ReadDescriptor(&r, &d)) {
    return Status::Corruption("malformed shard snapshot");
  }
  return d;
}

Status ShardMachine::Restore(consensus::LogIndex index, std::string_view data) {
  Reader r(data);
  uint64_t version = 0, max_ts = 0, gc_fence = 0;
  ShardRecord d;
  if (!r.U64(&version) || version < 1 || version > kSnapshotVersion || !ReadDescriptor(&r, &d) ||
      !r.U64(&max_ts) || (version >= 3 && !r.U64(&gc_fence)) || d.id != id_) {
    return Status::Corruption("malformed snapshot of shard " + std::to_string(id_));
  }
  storage::WriteBatch b;
  // Clear what this replica held, under both its old range and the snapshot's.
  // Clear the snapshot's range only. What this replica held beyond it (it fell behind a
  // split) belongs to the shards split off, which may be on this node with their own
  // rows; leftovers there are the children's versions, never read through this shard.
  {
    auto [rlo, rhi] = RowRange(d);
    b.DeleteRange(kRows, rlo, rhi);
    b.DeleteRange(kLocks, rlo, rhi);
    auto [qlo, qhi] = RequestRange(d);
    b.DeleteRange(kMeta, qlo, qhi);
  }
  std::vector<storage::ColumnFamily> sections = {kRows, kMeta};
  if (version >= 2) sections.push_back(kLocks);
  for (auto cf : sections) {
    for (;;) {
      uint8_t more = 0;
      std::string_view k, v;
      if (!r.U8(&more)) return Status::Corruption("truncated snapshot");
      if (more == 0) break;
      if (!r.Bytes(&k) || !r.Bytes(&v)) return Status::Corruption("truncated snapshot");
      b.Put(cf, k, v);
    }
  }
  if (!r.done()) return Status::Corruption("trailing bytes in snapshot");
  b.Put(kMeta, DescriptorKey(id_), EncodeDescriptor(d));
  described_.store(true);
  if (gc_fence > gc_fence_.load()) gc_fence_.store(gc_fence);
  StageApplied(&b, index.value(), max_ts);
  recent_.reset();  // its rows are gone; the next one starts above the snapshot's versions
  RETURN_IF_ERROR(engine_->Write({.sync = true}, b));
  {
    std::lock_guard lock(mu_);
    desc_ = std::move(d);
  }
  applied_.store(index.value());
  max_ts_.store(max_ts);
  return Status::OK();
}

}  // namespace gojodb::sharding
