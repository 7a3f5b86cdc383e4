#include "core/txn/percolator.h"

#include <algorithm>
#include <set>

#include "core/mvcc/timestamp_oracle.h"
#include "internal/encoding.h"

namespace gojodb::txn {
namespace {

constexpr char kLockTag = 'L';
constexpr std::string_view kRollbackMarker = "R";

TxnOutcome Refuse(TxnError e, std::string_view row_key, std::string message) {
  TxnOutcome o;
  o.error = e;
  o.row_key.assign(row_key);
  o.message = std::move(message);
  return o;
}

bool ValidKind(uint8_t k) {
  return k == uint8_t(LockKind::kPut) || k == uint8_t(LockKind::kDelete) ||
         k == uint8_t(LockKind::kCheck);
}

// A row key, as a lock-column-family key names one: exactly a row key (a lock), or a
// row key and 8 bytes (a rollback marker). Row keys are prefix-free.
bool IsRollbackKey(std::string_view key) { return mvcc::DecodeVersionKey(key).ok(); }

bool Resolved(const ReadLockRules& rules, Timestamp start_ts) {
  return std::find(rules.resolved.begin(), rules.resolved.end(), start_ts) != rules.resolved.end();
}

// Whether a read under `rules` must resolve `lock` on `row_key` first.
bool Blocks(const ReadLockRules& rules, std::string_view row_key, const Lock& lock) {
  if (lock.kind == LockKind::kCheck) return false;  // commits nothing
  if (lock.start_ts > rules.read_ts) return false;  // commits above start_ts > read_ts
  if (Resolved(rules, lock.start_ts)) return false;
  // A primary's lock is removed in the batch that commits it: still there, not committed.
  if (rules.latest && lock.primary == row_key) return false;
  return true;
}

}  // namespace

std::string EncodeLock(const Lock& l) {
  std::string out;
  out.reserve(30 + l.primary.size() + l.value.size());
  out.push_back(kLockTag);
  out.push_back(static_cast<char>(l.kind));
  mvcc::AppendUint64(&out, l.start_ts);
  mvcc::AppendUint64(&out, l.ttl_ms);
  mvcc::AppendUint64(&out, l.min_commit_ts);
  mvcc::AppendUint32(&out, static_cast<uint32_t>(l.primary.size()));
  out.append(l.primary);
  out.append(l.value);
  return out;
}

Result<Lock> DecodeLock(std::string_view in) {
  constexpr size_t kFixed = 2 + 8 * 3 + 4;
  if (in.size() < kFixed || in[0] != kLockTag || !ValidKind(uint8_t(in[1]))) {
    return Status::Corruption("bad lock record");
  }
  Lock l;
  l.kind = static_cast<LockKind>(in[1]);
  l.start_ts = mvcc::ReadUint64(in.substr(2));
  l.ttl_ms = mvcc::ReadUint64(in.substr(10));
  l.min_commit_ts = mvcc::ReadUint64(in.substr(18));
  const uint32_t primary_size = mvcc::ReadUint32(in.substr(26));
  if (in.size() - kFixed < primary_size) return Status::Corruption("lock record too short");
  l.primary.assign(in.substr(kFixed, primary_size));
  l.value.assign(in.substr(kFixed + primary_size));
  if (l.kind != LockKind::kPut && !l.value.empty()) {
    return Status::Corruption("lock without a put holds a value");
  }
  return l;
}

std::string RollbackKey(std::string_view row_key, Timestamp start_ts) {
  return mvcc::EncodeVersionKey(row_key, start_ts);
}

bool Expired(const Lock& lock, Timestamp current_ts) {
  return mvcc::PhysicalMillis(current_ts) >= mvcc::PhysicalMillis(lock.start_ts) + lock.ttl_ms;
}

std::string_view TxnErrorName(TxnError e) {
  switch (e) {
    case TxnError::kNone:
      return "NONE";
    case TxnError::kLocked:
      return "LOCKED";
    case TxnError::kWriteConflict:
      return "WRITE_CONFLICT";
    case TxnError::kRolledBack:
      return "ROLLED_BACK";
    case TxnError::kCommitted:
      return "COMMITTED";
    case TxnError::kLockNotFound:
      return "LOCK_NOT_FOUND";
    case TxnError::kCommitTsTooLow:
      return "COMMIT_TS_TOO_LOW";
    case TxnError::kConditionFailed:
      return "CONDITION_FAILED";
    case TxnError::kInvalid:
      return "INVALID";
    case TxnError::kTooOld:
      return "TOO_OLD";
  }
  return "UNKNOWN";
}

std::optional<TxnError> TxnErrorFromName(std::string_view name) {
  if (name.empty()) return TxnError::kNone;
  for (uint8_t e = 1; e <= uint8_t(TxnError::kTooOld); ++e) {
    if (TxnErrorName(TxnError(e)) == name) return TxnError(e);
  }
  return std::nullopt;
}

std::optional<TxnState> TxnStateFromName(std::string_view name) {
  for (uint8_t s = 0; s <= uint8_t(TxnState::kNotFound); ++s) {
    if (TxnStateName(TxnState(s)) == name) return TxnState(s);
  }
  return std::nullopt;
}

StatusCode TxnErrorCode(TxnError e) {
  switch (e) {
    case TxnError::kNone:
      return StatusCode::kOk;
    case TxnError::kConditionFailed:
      return StatusCode::kFailedPrecondition;
    case TxnError::kInvalid:
      return StatusCode::kInvalidArgument;
    default:
      return StatusCode::kAborted;
  }
}

std::string_view TxnStateName(TxnState s) {
  switch (s) {
    case TxnState::kLocked:
      return "LOCKED";
    case TxnState::kCommitted:
      return "COMMITTED";
    case TxnState::kRolledBack:
      return "ROLLED_BACK";
    case TxnState::kNotFound:
      return "NOT_FOUND";
  }
  return "UNKNOWN";
}

Status TxnOutcome::ToStatus() const {
  if (ok()) return Status::OK();
  if (error == TxnError::kLocked && lock) return LockedError(row_key, *lock);
  Status s(TxnErrorCode(error), message);
  s = s.WithDetail("reason", std::string(TxnErrorName(error)));
  if (conflict_ts != 0) {
    s = s.WithDetail(error == TxnError::kConditionFailed ? "current_version" : "conflict_ts",
                     std::to_string(conflict_ts));
  }
  if (commit_ts != 0) s = s.WithDetail("commit_ts", std::to_string(commit_ts));
  return s;
}

namespace {
// A lock as resolvers need it: a value can be megabytes, and nobody outside needs it.
Lock WithoutValue(Lock lock) {
  lock.value.clear();
  return lock;
}
}  // namespace

Status LockedError(std::string_view row_key, const Lock& lock) {
  return Status::Aborted("the row is locked by transaction " + std::to_string(lock.start_ts))
      .WithDetail("reason", std::string(TxnErrorName(TxnError::kLocked)))
      .WithDetail("lock_row", Base64Encode(row_key))
      .WithDetail("lock", Base64Encode(EncodeLock(WithoutValue(lock))));
}

std::optional<LockedRow> LockedFrom(const Status& s) {
  if (s.code() != StatusCode::kAborted) return std::nullopt;
  std::optional<std::string> reason, row, lock;
  for (const auto& [k, v] : s.details()) {
    if (k == "reason") reason = v;
    if (k == "lock_row") row = v;
    if (k == "lock") lock = v;
  }
  if (reason != TxnErrorName(TxnError::kLocked) || !row || !lock) return std::nullopt;
  auto row_key = Base64Decode(*row);
  auto raw = Base64Decode(*lock);
  if (!row_key.ok() || !raw.ok()) return std::nullopt;
  auto l = DecodeLock(*raw);
  if (!l.ok()) return std::nullopt;
  return LockedRow{std::move(*row_key), std::move(*l)};
}

Result<std::optional<Lock>> TxnRows::LockOf(std::string_view row_key) {
  ASSIGN_OR_RETURN(auto raw, engine_->Get({}, kLockCf, row_key));
  if (!raw) return std::optional<Lock>();
  ASSIGN_OR_RETURN(auto lock, DecodeLock(*raw));
  return std::optional<Lock>(std::move(lock));
}

bool TxnRows::MayHoldLocks(std::string_view first_row, std::string_view last_row) {
  storage::ReadOptions ro;
  ro.snapshot = snapshot_;
  ro.lower_bound = std::string(first_row);
  ro.upper_bound = mvcc::PrefixSuccessor(last_row);  // a marker's key extends its row's
  ro.max_skipped_entries = kMaxSkippedDeletes;
  auto it = engine_->NewIterator(ro, kLockCf);
  it->SeekToFirst();
  return it->Valid() || !it->status().ok();
}

Result<bool> TxnRows::HasRollbackMarker(std::string_view row_key, Timestamp start_ts) {
  ASSIGN_OR_RETURN(auto raw, engine_->Get({}, kLockCf, RollbackKey(row_key, start_ts)));
  return raw.has_value();
}

Result<TxnOutcome> TxnRows::FateWithoutLock(std::string_view row_key, Timestamp start_ts) {
  TxnOutcome o;
  mvcc::MvccReader reader(engine_, nullptr);
  ASSIGN_OR_RETURN(auto commit, reader.FindCommit(row_key, start_ts));
  if (commit) {
    o.state = TxnState::kCommitted;
    o.commit_ts = *commit;
    return o;
  }
  ASSIGN_OR_RETURN(bool rolled_back, HasRollbackMarker(row_key, start_ts));
  o.state = rolled_back ? TxnState::kRolledBack : TxnState::kNotFound;
  return o;
}

Result<TxnOutcome> TxnRows::Prewrite(const PrewriteRequest& r, Timestamp max_ts,
                                     storage::WriteBatch* batch) {
  if (r.start_ts == 0 || r.start_ts == mvcc::kMaxTimestamp) {
    return Refuse(TxnError::kInvalid, "", "prewrite needs a start timestamp");
  }
  if (r.primary.empty()) return Refuse(TxnError::kInvalid, "", "prewrite needs a primary row");
  if (r.mutations.empty()) return Refuse(TxnError::kInvalid, "", "prewrite has no rows");
  std::set<std::string_view> seen;
  for (const auto& m : r.mutations) {
    if (!seen.insert(m.row_key).second) {
      return Refuse(TxnError::kInvalid, m.row_key, "a row appears twice in one prewrite");
    }
    if (m.kind != LockKind::kPut && !m.value.empty()) {
      return Refuse(TxnError::kInvalid, m.row_key, "only a put carries a value");
    }
  }

  TxnOutcome o;
  o.min_commit_ts = std::max(r.start_ts, max_ts) + 1;
  storage::WriteBatch staged;
  mvcc::MvccReader reader(engine_, nullptr);
  for (const auto& m : r.mutations) {
    ASSIGN_OR_RETURN(bool rolled_back, HasRollbackMarker(m.row_key, r.start_ts));
    if (rolled_back) {
      return Refuse(TxnError::kRolledBack, m.row_key, "the transaction was rolled back");
    }
    ASSIGN_OR_RETURN(auto lock, LockOf(m.row_key));
    if (lock) {
      if (lock->start_ts == r.start_ts) continue;  // a retry: already locked by us
      auto refusal = Refuse(TxnError::kLocked, m.row_key, "the row is locked by a transaction");
      refusal.lock = std::move(lock);
      return refusal;
    }
    ASSIGN_OR_RETURN(auto newest, reader.Get(m.row_key, mvcc::kMaxTimestamp));
    if (newest && newest->version > r.start_ts) {
      if (newest->start_ts == r.start_ts) continue;  // a late retry: we committed it
      auto refusal = Refuse(TxnError::kWriteConflict, m.row_key,
                            "the row was written after the transaction started");
      refusal.conflict_ts = newest->version;
      return refusal;
    }
    if (m.if_version) {
      const uint64_t current = newest && !newest->deleted ? newest->version : 0;
      if (current != *m.if_version) {
        auto refusal = Refuse(
            TxnError::kConditionFailed, m.row_key,
            "version " + std::to_string(current) + " is not " + std::to_string(*m.if_version));
        refusal.conflict_ts = current;
        return refusal;
      }
    }
    Lock l;
    l.start_ts = r.start_ts;
    l.primary = r.primary;
    l.ttl_ms = r.ttl_ms;
    l.min_commit_ts = o.min_commit_ts;
    l.kind = m.kind;
    if (m.kind == LockKind::kPut) l.value = m.value;
    staged.Put(kLockCf, m.row_key, EncodeLock(l));
  }
  batch->Append(std::move(staged));
  return o;
}

Result<TxnOutcome> TxnRows::Commit(Timestamp start_ts, Timestamp commit_ts,
                                   const std::vector<std::string>& rows, bool primary,
                                   storage::WriteBatch* batch) {
  if (start_ts == 0 || commit_ts <= start_ts || commit_ts == mvcc::kMaxTimestamp) {
    return Refuse(TxnError::kInvalid, "", "a commit needs start_ts < commit_ts");
  }
  TxnOutcome o;
  o.commit_ts = commit_ts;
  storage::WriteBatch staged;
  std::set<std::string_view> seen;
  for (const auto& row : rows) {
    if (!seen.insert(row).second) continue;
    ASSIGN_OR_RETURN(auto lock, LockOf(row));
    if (lock && lock->start_ts == start_ts) {
      if (primary && commit_ts < lock->min_commit_ts) {
        auto refusal = Refuse(TxnError::kCommitTsTooLow, row,
                              "commit timestamp below the primary's min_commit_ts " +
                                  std::to_string(lock->min_commit_ts));
        refusal.min_commit_ts = lock->min_commit_ts;
        return refusal;
      }
      switch (lock->kind) {
        case LockKind::kPut:
          mvcc::PutCommitted(&staged, row, commit_ts, start_ts, lock->value);
          break;
        case LockKind::kDelete:
          mvcc::DeleteCommitted(&staged, row, commit_ts, start_ts);
          break;
        case LockKind::kCheck:
          break;
      }
      staged.Delete(kLockCf, row);
      continue;
    }
    ASSIGN_OR_RETURN(auto fate, FateWithoutLock(row, start_ts));
    if (fate.state == TxnState::kCommitted) {
      if (fate.commit_ts != commit_ts) {
        return Refuse(TxnError::kInvalid, row,
                      "the transaction committed the row at " + std::to_string(fate.commit_ts) +
                          ", not " + std::to_string(commit_ts));
      }
      continue;  // a retry, or a resolver got here first
    }
    if (fate.state == TxnState::kRolledBack) {
      return Refuse(TxnError::kRolledBack, row, "the transaction was rolled back");
    }
    return Refuse(TxnError::kLockNotFound, row, "no lock of the transaction on the row");
  }
  batch->Append(std::move(staged));
  return o;
}

Result<TxnOutcome> TxnRows::Rollback(Timestamp start_ts, const std::vector<std::string>& rows,
                                     storage::WriteBatch* batch) {
  if (start_ts == 0) return Refuse(TxnError::kInvalid, "", "a rollback needs a start timestamp");
  storage::WriteBatch staged;
  std::set<std::string_view> seen;
  for (const auto& row : rows) {
    if (!seen.insert(row).second) continue;
    ASSIGN_OR_RETURN(auto lock, LockOf(row));
    if (lock && lock->start_ts == start_ts) {
      staged.Delete(kLockCf, row);
    } else {
      ASSIGN_OR_RETURN(auto fate, FateWithoutLock(row, start_ts));
      if (fate.state == TxnState::kCommitted) {
        auto refusal = Refuse(TxnError::kCommitted, row, "the transaction committed the row");
        refusal.commit_ts = fate.commit_ts;
        return refusal;
      }
      if (fate.state == TxnState::kRolledBack) continue;
    }
    staged.Put(kLockCf, RollbackKey(row, start_ts), kRollbackMarker);
  }
  batch->Append(std::move(staged));
  return TxnOutcome{};
}

Result<TxnOutcome> TxnRows::CheckTxnStatus(const CheckStatusRequest& r,
                                           storage::WriteBatch* batch) {
  if (r.start_ts == 0 || r.primary.empty()) {
    return Refuse(TxnError::kInvalid, "", "a status check needs the primary and start_ts");
  }
  ASSIGN_OR_RETURN(auto lock, LockOf(r.primary));
  if (lock && lock->start_ts == r.start_ts) {
    TxnOutcome o;
    if (Expired(*lock, r.current_ts)) {
      batch->Delete(kLockCf, r.primary);
      batch->Put(kLockCf, RollbackKey(r.primary, r.start_ts), kRollbackMarker);
      o.state = TxnState::kRolledBack;
      return o;
    }
    if (r.caller_ts != 0 && r.caller_ts != mvcc::kMaxTimestamp &&
        r.caller_ts >= lock->min_commit_ts) {
      lock->min_commit_ts = r.caller_ts + 1;
      batch->Put(kLockCf, r.primary, EncodeLock(*lock));
    }
    o.state = TxnState::kLocked;
    o.min_commit_ts = lock->min_commit_ts;
    o.lock = std::move(lock);
    return o;
  }
  ASSIGN_OR_RETURN(auto fate, FateWithoutLock(r.primary, r.start_ts));
  if (fate.state == TxnState::kNotFound && r.rollback_if_missing) {
    batch->Put(kLockCf, RollbackKey(r.primary, r.start_ts), kRollbackMarker);
    fate.state = TxnState::kRolledBack;
  }
  return fate;
}

Result<TxnOutcome> TxnRows::Heartbeat(std::string_view primary, Timestamp start_ts, uint64_t ttl_ms,
                                      storage::WriteBatch* batch) {
  ASSIGN_OR_RETURN(auto lock, LockOf(primary));
  if (lock && lock->start_ts == start_ts) {
    if (ttl_ms > lock->ttl_ms) {
      lock->ttl_ms = ttl_ms;
      batch->Put(kLockCf, primary, EncodeLock(*lock));
    }
    TxnOutcome o;
    o.state = TxnState::kLocked;
    o.lock = std::move(lock);
    return o;
  }
  ASSIGN_OR_RETURN(auto fate, FateWithoutLock(primary, start_ts));
  switch (fate.state) {
    case TxnState::kCommitted: {
      auto refusal = Refuse(TxnError::kCommitted, primary, "the transaction committed");
      refusal.commit_ts = fate.commit_ts;
      return refusal;
    }
    case TxnState::kRolledBack:
      return Refuse(TxnError::kRolledBack, primary, "the transaction was rolled back");
    default:
      return Refuse(TxnError::kLockNotFound, primary, "no lock of the transaction");
  }
}

Result<std::optional<Lock>> TxnRows::ReadBlocker(std::string_view row_key,
                                                 const ReadLockRules& rules) {
  ASSIGN_OR_RETURN(auto lock, LockOf(row_key));
  if (lock && !Blocks(rules, row_key, *lock)) lock.reset();
  return lock;
}

Status TxnRows::ForEachLock(std::string_view begin, std::string_view end,
                            const std::function<bool(std::string_view, Lock)>& fn) {
  storage::ReadOptions ro;
  ro.snapshot = snapshot_;
  ro.lower_bound.assign(begin);
  ro.upper_bound.assign(end);
  auto it = engine_->NewIterator(ro, kLockCf);
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (IsRollbackKey(it->key())) continue;
    ASSIGN_OR_RETURN(auto lock, DecodeLock(it->value()));
    if (!fn(it->key(), std::move(lock))) return Status::OK();
  }
  return it->status();
}

Result<std::vector<std::pair<std::string, Lock>>> TxnRows::ReadBlockers(std::string_view begin,
                                                                        std::string_view end,
                                                                        const ReadLockRules& rules,
                                                                        size_t limit) {
  std::vector<std::pair<std::string, Lock>> out;
  if (limit == 0) return out;
  RETURN_IF_ERROR(ForEachLock(begin, end, [&](std::string_view row, Lock lock) {
    if (Blocks(rules, row, lock)) out.emplace_back(std::string(row), std::move(lock));
    return out.size() < limit;
  }));
  return out;
}

Result<std::vector<LockedRow>> TxnRows::LocksBelow(std::string_view begin, std::string_view end,
                                                   Timestamp fence, size_t limit) {
  std::vector<LockedRow> out;
  if (limit == 0) return out;
  RETURN_IF_ERROR(ForEachLock(begin, end, [&](std::string_view row, Lock lock) {
    if (lock.start_ts < fence) out.push_back({std::string(row), WithoutValue(std::move(lock))});
    return out.size() < limit;
  }));
  return out;
}

Result<uint64_t> TxnRows::DropMarkersBelow(std::string_view begin, std::string_view end,
                                           Timestamp fence, storage::WriteBatch* batch) {
  uint64_t dropped = 0;
  storage::ReadOptions ro;
  ro.lower_bound.assign(begin);
  ro.upper_bound.assign(end);
  auto it = engine_->NewIterator(ro, kLockCf);
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    auto marker = mvcc::DecodeVersionKey(it->key());
    if (!marker.ok() || marker->ts >= fence) continue;
    batch->Delete(kLockCf, it->key());
    ++dropped;
  }
  RETURN_IF_ERROR(it->status());
  return dropped;
}

}  // namespace gojodb::txn
