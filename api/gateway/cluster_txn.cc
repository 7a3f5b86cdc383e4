// ClusterKv's side of transactions: the coordinator of Percolator's two-phase commit and
// the resolution of locks met by reads and writes (docs/architecture/transactions.md).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <future>
#include <nlohmann/json.hpp>
#include <random>

#include "api/gateway/call_util.h"
#include "api/gateway/cluster_kv.h"
#include "api/grpc/convert.h"
#include "api/grpc/shard_convert.h"
#include "core/mvcc/key_codec.h"
#include "core/mvcc/timestamp_oracle.h"
#include "internal/failpoint.h"

namespace gojodb::gateway {
namespace {

// Others rolled the transaction back (its locks expired) before its commit applied.
Status RolledBackBeforeCommit() {
  return Status::Aborted(
             "the transaction was rolled back before it could commit (its locks "
             "expired)")
      .WithDetail("reason", "ROLLED_BACK");
}

v1::TxnMutation::Kind KindOf(txn::LockKind k) {
  switch (k) {
    case txn::LockKind::kDelete:
      return v1::TxnMutation::DELETE;
    case txn::LockKind::kCheck:
      return v1::TxnMutation::CHECK;
    default:
      return v1::TxnMutation::PUT;
  }
}

}  // namespace

Result<txn::TxnOutcome> ClusterKv::TxnCall(const std::vector<std::string>& rows,
                                           v1::ShardTxnRequest req, Clock::time_point deadline) {
  v1::ShardTxnResponse resp;
  RETURN_IF_ERROR(CallShard(
      rows.front(), Target::kLeader, /*write=*/true, /*has_request_id=*/true, deadline,
      [&](const sharding::ShardRecord& shard, const NodeConn& node, Clock::time_point d) -> Status {
        for (const auto& r : rows) {
          if (!InRange(shard, r)) return RowsMovedError();
        }
        SetRoute(shard, req.mutable_route());
        return node.client->Txn(req, &resp, d);
      }));
  return rpc::FromProto(resp);
}

Result<std::vector<std::vector<size_t>>> ClusterKv::GroupByShard(
    const std::vector<std::string>& rows, Clock::time_point deadline) {
  std::map<uint64_t, std::vector<size_t>> by_shard;
  for (size_t i = 0; i < rows.size(); ++i) {
    auto shard = routes_.Locate(rows[i]);
    // A gap in the map (a split reported by its parent before its new shard): the map
    // is read again until it closes or the deadline passes.
    for (int attempt = 0; !shard.ok(); ++attempt) {
      if (Expired(deadline)) {
        return Status::Unavailable("no shard of the cached map holds a row");
      }
      if (attempt > 0) Backoff(attempt, deadline);
      RefreshMap(deadline);
      shard = routes_.Locate(rows[i]);
    }
    by_shard[shard->id].push_back(i);
  }
  std::vector<std::vector<size_t>> out;
  for (auto& [id, idx] : by_shard) out.push_back(std::move(idx));
  return out;
}

Status ClusterKv::ResolveLock(const txn::LockedRow& locked, uint64_t read_ts,
                              std::vector<uint64_t>* resolved, int attempt,
                              Clock::time_point deadline) {
  const txn::Lock& lock = locked.lock;
  ASSIGN_OR_RETURN(uint64_t now, FreshTimestamp(deadline));
  v1::ShardTxnRequest check;
  auto* c = check.mutable_check_status();
  c->set_primary(lock.primary);
  c->set_start_ts(lock.start_ts);
  c->set_current_ts(now);
  if (resolved) c->set_caller_ts(read_ts);
  // Only once the lock met has expired may a missing primary lock mean "never coming":
  // before that, the primary's prewrite may still be on its way.
  c->set_rollback_if_missing(txn::Expired(lock, now));
  ASSIGN_OR_RETURN(auto status, TxnCall({lock.primary}, check, deadline));
  if (!status.ok()) return status.ToStatus();
  switch (status.state) {
    case txn::TxnState::kCommitted:
      return FinishRows(lock.start_ts, status.commit_ts, {locked.row_key}, deadline)
          .WithContext("rolling a committed row forward");
    case txn::TxnState::kRolledBack:
      if (locked.row_key == lock.primary) return Status::OK();  // the check rolled it back
      return FinishRows(lock.start_ts, 0, {locked.row_key}, deadline)
          .WithContext("rolling a row back");
    case txn::TxnState::kLocked:
      if (resolved) {
        // Not committed when asked; a reader at a timestamp pushed its commit above it.
        resolved->push_back(lock.start_ts);
        return Status::OK();
      }
      Backoff(attempt, deadline);
      return Status::OK();
    case txn::TxnState::kNotFound:
      Backoff(attempt, deadline);  // the lock met expires in time; its check then decides
      return Status::OK();
  }
  return Status::Internal("unknown transaction state");
}

Status ClusterKv::ResolveAbandonedLock(const txn::LockedRow& locked) {
  return ResolveLock(locked, 0, nullptr, 0, Clock::now() + options_.request_timeout);
}

ClusterKv::ActiveStart::ActiveStart(ClusterKv* kv, uint64_t start_ts)
    : kv_(kv), start_ts_(start_ts) {
  std::lock_guard lock(kv_->txns_mu_);
  kv_->active_starts_.insert(start_ts_);
}

ClusterKv::ActiveStart::~ActiveStart() {
  std::lock_guard lock(kv_->txns_mu_);
  kv_->active_starts_.erase(kv_->active_starts_.find(start_ts_));
}

uint64_t ClusterKv::OldestActiveStart() {
  std::lock_guard lock(txns_mu_);
  uint64_t oldest = active_starts_.empty() ? 0 : *active_starts_.begin();
  const auto now = Clock::now();
  for (const auto& [id, session] : txns_) {
    if (now - session->last_used > options_.txn_idle_timeout) continue;  // dropped when met
    if (oldest == 0 || session->start_ts < oldest) oldest = session->start_ts;
  }
  return oldest;
}

void ClusterKv::HoldLoop() {
  uint64_t held = 0;  // what the controller last accepted (0: no hold)
  while (true) {
    {
      std::unique_lock lock(poll_mu_);
      if (poll_cv_.wait_for(lock, options_.gc_hold_interval, [&] { return stopping_; })) break;
    }
    const uint64_t oldest = OldestActiveStart();
    if (oldest == 0 && held == 0) continue;  // nothing to hold, nothing to release
    Status s = CallController(Clock::now() + options_.gc_hold_interval,
                              [&](ControllerConn& c, grpc::ClientContext* ctx) {
                                v1::HoldGcRequest req;
                                req.set_holder(gc_holder_);
                                req.set_min_start_ts(oldest);
                                req.set_ttl_ms(static_cast<uint32_t>(options_.gc_hold_ttl.count()));
                                v1::HoldGcResponse resp;
                                return rpc::FromGrpc(c.controller->HoldGc(ctx, req, &resp), ctx);
                              });
    if (s.ok()) held = oldest;
  }
  if (held != 0) {
    // Let the GC go on at once rather than after the hold lapses.
    (void)CallController(Clock::now() + options_.gc_hold_interval,
                         [&](ControllerConn& c, grpc::ClientContext* ctx) {
                           v1::HoldGcRequest req;
                           req.set_holder(gc_holder_);
                           req.set_ttl_ms(1);
                           v1::HoldGcResponse resp;
                           return rpc::FromGrpc(c.controller->HoldGc(ctx, req, &resp), ctx);
                         });
  }
}

Status ClusterKv::WithLocksResolved(uint64_t read_ts, std::vector<uint64_t>* resolved,
                                    Clock::time_point deadline,
                                    const std::function<Status()>& call) {
  for (int attempt = 0;; ++attempt) {
    Status s = call();
    auto locked = txn::LockedFrom(s);
    if (!locked) return s;
    if (Expired(deadline)) {
      return Status::Aborted("the row is held by transaction " +
                             std::to_string(locked->lock.start_ts) +
                             ", which did not finish within the request deadline")
          .WithDetail("reason", "LOCKED");
    }
    RETURN_IF_ERROR(ResolveLock(*locked, read_ts, resolved, attempt, deadline));
  }
}

Status ClusterKv::FinishRows(uint64_t start_ts, uint64_t commit_ts,
                             const std::vector<std::string>& rows, Clock::time_point deadline) {
  ASSIGN_OR_RETURN(auto groups, GroupByShard(rows, deadline));
  Status first;
  for (const auto& g : groups) {
    v1::ShardTxnRequest req;
    std::vector<std::string> part;
    for (size_t i : g) part.push_back(rows[i]);
    if (commit_ts != 0) {
      auto* c = req.mutable_commit();
      c->set_start_ts(start_ts);
      c->set_commit_ts(commit_ts);
      c->mutable_rows()->Add(part.begin(), part.end());
    } else {
      auto* r = req.mutable_rollback();
      r->set_start_ts(start_ts);
      r->mutable_rows()->Add(part.begin(), part.end());
    }
    auto out = TxnCall(part, req, deadline);
    Status s = out.ok() ? out->ToStatus() : out.status();
    if (!s.ok() && first.ok()) first = std::move(s);
  }
  return first;
}

Result<uint64_t> ClusterKv::CommitTransaction(uint64_t start_ts,
                                              std::vector<txn::TxnMutation> mutations,
                                              Clock::time_point deadline, uint64_t commit_below) {
  std::vector<std::string> rows;
  rows.reserve(mutations.size());
  for (const auto& m : mutations) rows.push_back(m.row_key);
  auto primary_it = std::find_if(mutations.begin(), mutations.end(),
                                 [](const auto& m) { return m.kind != txn::LockKind::kCheck; });
  if (primary_it == mutations.end()) {
    return Status::InvalidArgument("a transaction needs at least one write");
  }
  const std::string primary = primary_it->row_key;
  ActiveStart active(this, start_ts);
  // A lock lives until physical(start_ts) + ttl: counted from now, not from start_ts,
  // which for an interactive transaction may be long ago.
  auto lock_ttl_ms = [&]() -> uint64_t {
    const auto now_ms =
        static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                  std::chrono::system_clock::now().time_since_epoch())
                                  .count());
    const uint64_t started = mvcc::PhysicalMillis(start_ts);
    return (now_ms > started ? now_ms - started : 0) +
           static_cast<uint64_t>(options_.txn_lock_ttl.count());
  };
  // Once the primary is locked, a commit that takes long keeps its TTL ahead (so that
  // others do not roll it back while it is still working).
  bool primary_locked = false;
  auto last_heartbeat = Clock::now();
  auto keep_alive = [&]() -> Status {
    if (!primary_locked || Clock::now() - last_heartbeat < options_.txn_lock_ttl / 3) {
      return Status::OK();
    }
    v1::ShardTxnRequest hb;
    hb.mutable_heartbeat()->set_primary(primary);
    hb.mutable_heartbeat()->set_start_ts(start_ts);
    hb.mutable_heartbeat()->set_ttl_ms(lock_ttl_ms());
    auto out = TxnCall({primary}, hb, deadline);
    last_heartbeat = Clock::now();
    if (out.ok() && out->error == txn::TxnError::kRolledBack) {
      return RolledBackBeforeCommit();
    }
    return Status::OK();  // a lost heartbeat is retried at the next step
  };

  // Phase one: lock every row, the primary's shard first, then the others at once. The
  // rows locked so far are rolled back if any shard refuses.
  std::vector<std::string> locked_rows;
  uint64_t min_commit_ts = start_ts + 1;
  auto abort = [&](Status why) -> Status {
    // Best effort: a lock left behind is resolved by whoever meets it.
    (void)FinishRows(start_ts, 0, locked_rows, deadline);
    return why;
  };
  const auto wait_until = Clock::now() + options_.txn_lock_wait;
  std::vector<size_t> pending(mutations.size());
  for (size_t i = 0; i < pending.size(); ++i) pending[i] = i;
  for (int attempt = 0; !pending.empty(); ++attempt) {
    std::vector<std::string> pending_rows;
    for (size_t i : pending) pending_rows.push_back(rows[i]);
    auto groups = GroupByShard(pending_rows, deadline);
    if (!groups.ok()) return abort(groups.status());
    std::vector<size_t> next;
    auto build = [&](const std::vector<size_t>& g, std::vector<std::string>* part) {
      v1::ShardTxnRequest req;
      auto* p = req.mutable_prewrite();
      p->set_start_ts(start_ts);
      p->set_primary(primary);
      p->set_ttl_ms(lock_ttl_ms());
      for (size_t gi : g) {
        const auto& m = mutations[pending[gi]];
        auto* out = p->add_mutations();
        out->set_kind(KindOf(m.kind));
        out->set_row_key(m.row_key);
        out->set_value(m.value);
        if (m.if_version) {
          out->set_has_if_version(true);
          out->set_if_version(*m.if_version);
        }
        part->push_back(m.row_key);
      }
      return req;
    };
    // One shard's answer: its rows locked, or to be tried again, or why to abort.
    auto handle = [&](const std::vector<size_t>& g, const std::vector<std::string>& part,
                      const Result<txn::TxnOutcome>& out) -> Status {
      if (!out.ok() && IsRowsMoved(out.status())) {
        for (size_t gi : g) next.push_back(pending[gi]);  // a split: group them again
        return Status::OK();
      }
      if (!out.ok()) return out.status();
      if (out->error == txn::TxnError::kLocked && out->lock) {
        // Held by another transaction. One that finished (committed, rolled back, or
        // expired) is resolved and these rows tried again. A live one is waited for at
        // most txn_lock_wait from the start of this commit, then wins: this transaction
        // aborts. No wait is unbounded, so two transactions waiting on each other both
        // give up instead of deadlocking.
        txn::LockedRow met{out->row_key, *out->lock};
        std::vector<uint64_t> skip;
        RETURN_IF_ERROR(ResolveLock(met, mvcc::kMaxTimestamp, &skip, attempt, deadline));
        if (!skip.empty()) {
          if (Clock::now() >= wait_until) {
            return Status::Aborted("write conflict: a row is held by transaction " +
                                   std::to_string(out->lock->start_ts) + ", which has not finished")
                .WithDetail("reason", "LOCKED");
          }
          Backoff(attempt, std::min(deadline, wait_until));
        }
        for (size_t gi : g) next.push_back(pending[gi]);
        return Status::OK();
      }
      if (!out->ok()) return out->ToStatus();
      if (std::find(part.begin(), part.end(), primary) != part.end()) {
        primary_locked = true;
        last_heartbeat = Clock::now();
      }
      locked_rows.insert(locked_rows.end(), part.begin(), part.end());
      min_commit_ts = std::max(min_commit_ts, out->min_commit_ts);
      return Status::OK();
    };
    // The primary's shard first: a secondary lock then always finds its primary's lock
    // (or its fate), so no reader waits for a primary that has not arrived. Then every
    // other shard at once.
    std::vector<const std::vector<size_t>*> rest;
    for (const auto& g : *groups) {
      const bool has_primary = std::any_of(
          g.begin(), g.end(), [&](size_t gi) { return mutations[pending[gi]].row_key == primary; });
      if (!has_primary) {
        rest.push_back(&g);
        continue;
      }
      // A test stops the coordinator here (arg: the rows locked so far), as a crash would.
      RETURN_IF_ERROR(failpoint::Inject("cluster_txn.before_prewrite", locked_rows.size()));
      if (Status ka = keep_alive(); !ka.ok()) return abort(ka);
      std::vector<std::string> part;
      auto req = build(g, &part);
      if (Status h = handle(g, part, TxnCall(part, req, deadline)); !h.ok()) return abort(h);
    }
    if (!rest.empty() && (primary_locked || next.empty())) {
      RETURN_IF_ERROR(failpoint::Inject("cluster_txn.before_prewrite", locked_rows.size()));
      if (Status ka = keep_alive(); !ka.ok()) return abort(ka);
      std::vector<std::vector<std::string>> parts(rest.size());
      std::vector<std::future<Result<txn::TxnOutcome>>> calls;
      for (size_t i = 0; i < rest.size(); ++i) {
        auto req = build(*rest[i], &parts[i]);
        calls.push_back(
            std::async(std::launch::async, [this, req = std::move(req), part = parts[i], deadline] {
              return TxnCall(part, req, deadline);
            }));
      }
      // Every answer is taken in (the rows it locked must be rolled back on an abort).
      Status failed;
      for (size_t i = 0; i < rest.size(); ++i) {
        Status h = handle(*rest[i], parts[i], calls[i].get());
        if (!h.ok() && failed.ok()) failed = h;
      }
      if (!failed.ok()) return abort(failed);
    } else {
      for (const auto* g : rest) {
        for (size_t gi : *g) next.push_back(pending[gi]);  // after the primary's rows
      }
    }
    pending = std::move(next);
    if (!pending.empty() && Expired(deadline)) {
      return abort(Status::Unavailable("the transaction could not lock its rows in time"));
    }
  }

  // Phase two: the primary's commit decides.
  RETURN_IF_ERROR(failpoint::Inject("cluster_txn.before_primary_commit"));
  if (Status s = keep_alive(); !s.ok()) return abort(s);
  ASSIGN_OR_RETURN(uint64_t commit_ts, FreshTimestamp(deadline));
  commit_ts = std::max(commit_ts, min_commit_ts);
  // Writes planned with a collection record commit inside its lease, or not at all (an
  // index build counts on it: docs/architecture/documents.md).
  if (commit_below != 0 && commit_ts >= commit_below) return abort(SchemaLeaseEnded());
  for (;;) {
    v1::ShardTxnRequest req;
    auto* c = req.mutable_commit();
    c->set_start_ts(start_ts);
    c->set_commit_ts(commit_ts);
    c->add_rows(primary);
    c->set_primary(true);
    auto out = TxnCall({primary}, req, deadline);
    if (!out.ok()) {
      // The commit may or may not have applied; the transaction's fate is its primary's
      // record, which readers will find either way.
      return Status::Unavailable("the transaction's commit outcome is unknown: " +
                                 out.status().message());
    }
    if (out->error == txn::TxnError::kCommitTsTooLow) {
      // A reader pushed it: commit above the read.
      ASSIGN_OR_RETURN(uint64_t fresh, FreshTimestamp(deadline));
      commit_ts = std::max(fresh, out->min_commit_ts);
      if (commit_below != 0 && commit_ts >= commit_below) return abort(SchemaLeaseEnded());
      continue;
    }
    if (out->error == txn::TxnError::kRolledBack || out->error == txn::TxnError::kLockNotFound) {
      // Its locks expired and someone rolled it back first.
      return abort(RolledBackBeforeCommit());
    }
    if (!out->ok()) return out->ToStatus();
    break;
  }

  // Committed. The other rows are rolled forward now; any left (a failure here) are
  // rolled forward by whoever meets them.
  RETURN_IF_ERROR(failpoint::Inject("cluster_txn.before_secondaries", commit_ts));
  std::vector<std::string> secondaries;
  for (const auto& r : rows) {
    if (r != primary) secondaries.push_back(r);
  }
  if (!secondaries.empty()) {
    // After the answer: the transaction is committed already, and a reader that meets
    // one of these locks first rolls that row forward itself.
    txn_pool_->Submit([this, start_ts, commit_ts, secondaries = std::move(secondaries)] {
      Status s =
          FinishRows(start_ts, commit_ts, secondaries, Clock::now() + options_.request_timeout);
      if (!s.ok()) {
        spdlog::debug("transaction {} committed; rows left locked for readers to roll forward: {}",
                      start_ts, s.ToString());
      }
    });
  }
  return commit_ts;
}

}  // namespace gojodb::gateway

// --- The transaction API ---------------------------------------------------------------

namespace gojodb::gateway {
namespace {

constexpr uint32_t kTenant = controller::kDefaultTenantId;

std::string NewTxnId() {
  static thread_local std::mt19937_64 rng(std::random_device{}());
  char buf[33];
  std::snprintf(buf, sizeof(buf), "%016llx%016llx", static_cast<unsigned long long>(rng()),
                static_cast<unsigned long long>(rng()));
  return buf;
}

Status ConditionFailed(size_t i, std::string why, uint64_t current) {
  return Status::FailedPrecondition("conditions[" + std::to_string(i) + "]: " + why)
      .WithDetail("condition", std::to_string(i))
      .WithDetail("current_version", std::to_string(current));
}

}  // namespace

Result<uint64_t> ClusterKv::CommitMutations(uint64_t start_ts,
                                            std::vector<txn::TxnMutation> mutations,
                                            Clock::time_point deadline, uint64_t commit_below) {
  std::vector<std::string> rows;
  bool checks = false;
  for (const auto& m : mutations) {
    rows.push_back(m.row_key);
    checks |= m.kind == txn::LockKind::kCheck;
  }
  ASSIGN_OR_RETURN(auto groups, GroupByShard(rows, deadline));
  if (groups.size() == 1 && !checks) {
    // One phase: one write at a timestamp above start_ts, refused if a row changed since.
    v1::ShardWriteRequest w;
    w.set_start_ts(start_ts);
    w.set_commit_below(commit_below);
    w.mutable_mutations()->Reserve(static_cast<int>(mutations.size()));
    for (auto& m : mutations) {
      auto* out = w.add_mutations();
      out->set_delete_(m.kind == txn::LockKind::kDelete);
      out->set_row_key(std::move(m.row_key));
      out->set_value(std::move(m.value));
      if (m.if_version) {
        out->set_has_if_version(true);
        out->set_if_version(*m.if_version);
      }
    }
    auto out = WriteKeeping(&w, rows, deadline);
    if (out.ok()) return out->version;
    if (!IsRowsMoved(out.status())) return out.status();
    // A split under it: the rows span shards now. The mutations back from the request.
    for (size_t i = 0; i < mutations.size(); ++i) {
      auto* m = w.mutable_mutations(static_cast<int>(i));
      mutations[i].row_key = std::move(*m->mutable_row_key());
      mutations[i].value = std::move(*m->mutable_value());
    }
  }
  return CommitTransaction(start_ts, std::move(mutations), deadline, commit_below);
}

Result<kv::TxnResult> ClusterKv::Txn(const kv::TxnRequest& req) {
  const auto deadline = Clock::now() + options_.request_timeout;
  for (;;) {
    auto out = TxnOnce(req, deadline);
    if (out.ok() || !IsSchemaLeaseEnded(out.status()) || Expired(deadline)) return out;
    // Nothing committed: begin again with the collections' records read again.
    for (const auto& op : req.ops) ForgetCollection(op.collection);
  }
}

Result<kv::TxnResult> ClusterKv::TxnOnce(const kv::TxnRequest& req, Clock::time_point deadline) {
  if (req.reads.empty() && req.ops.empty() && req.conditions.empty()) {
    return Status::InvalidArgument("a transaction needs reads, ops or conditions");
  }
  if (!req.ops.empty()) RETURN_IF_ERROR(ValidateBatch({req.ops, ""}, options_.limits));
  for (size_t i = 0; i < req.reads.size(); ++i) {
    RETURN_IF_ERROR(ValidateKey(req.reads[i].key, options_.limits)
                        .WithContext("reads[" + std::to_string(i) + "]"));
  }
  for (size_t i = 0; i < req.conditions.size(); ++i) {
    const auto& c = req.conditions[i];
    const std::string where = "conditions[" + std::to_string(i) + "]";
    RETURN_IF_ERROR(ValidateKey(c.key, options_.limits).WithContext(where));
    if (int(c.version.has_value()) + int(c.value.has_value()) + int(c.exists.has_value()) != 1) {
      return Status::InvalidArgument(where + ": give exactly one of version, value and exists");
    }
  }
  kv::TxnResult out;
  ASSIGN_OR_RETURN(out.start_ts, FreshTimestamp(deadline));
  ActiveStart active(this, out.start_ts);
  auto read = [&](const std::string& collection, const std::string& key) {
    return Get({collection, key, kv::Consistency::kSnapshot, out.start_ts});
  };
  for (const auto& r : req.reads) {
    ASSIGN_OR_RETURN(auto g, read(r.collection, r.key));
    out.reads.push_back(std::move(g));
  }
  // Row key -> mutation index, for the ops and the rows the conditions hold.
  std::map<std::string, size_t> row_index;
  uint64_t commit_below = 0;
  // The ops (documents with their entries) at the transaction's snapshot.
  ASSIGN_OR_RETURN(std::vector<txn::TxnMutation> mutations,
                   PlanOps(req.ops, out.start_ts, deadline, &commit_below));
  for (size_t i = 0; i < mutations.size(); ++i) row_index.emplace(mutations[i].row_key, i);
  for (size_t i = 0; i < req.conditions.size(); ++i) {
    const auto& c = req.conditions[i];
    ASSIGN_OR_RETURN(auto g, read(c.collection, c.key));
    const uint64_t current = g.found ? g.version : 0;
    if (c.version && *c.version != current) {
      return ConditionFailed(
          i, "the version is " + std::to_string(current) + ", not " + std::to_string(*c.version),
          current);
    }
    if (c.value && (!g.found || g.value != *c.value)) {
      return ConditionFailed(i, g.found ? "the value differs" : "the key is absent", current);
    }
    if (c.exists && *c.exists != g.found) {
      return ConditionFailed(i, g.found ? "the key exists" : "the key is absent", current);
    }
    if (req.ops.empty()) continue;  // read-only: nothing to hold
    ASSIGN_OR_RETURN(uint32_t id, CollectionId(c.collection, deadline));
    txn::TxnMutation m;
    m.kind = txn::LockKind::kCheck;
    m.row_key = mvcc::EncodeRowKey(kTenant, id, c.key);
    // Held until commit: a version after start_ts on it is a conflict.
    if (row_index.emplace(m.row_key, mutations.size()).second) mutations.push_back(std::move(m));
  }
  if (req.ops.empty()) return out;
  ASSIGN_OR_RETURN(out.commit_ts,
                   CommitMutations(out.start_ts, std::move(mutations), deadline, commit_below));
  return out;
}

Result<std::shared_ptr<ClusterKv::TxnSession>> ClusterKv::FindTxn(const std::string& id) {
  std::lock_guard lock(txns_mu_);
  auto it = txns_.find(id);
  const auto now = Clock::now();
  if (it != txns_.end() && now - it->second->last_used > options_.txn_idle_timeout) {
    txns_.erase(it);
    it = txns_.end();
  }
  if (it == txns_.end()) {
    return Status::NotFound("transaction '" + id.substr(0, 64) +
                            "' is not open here (finished, idle too long, or begun on another "
                            "gateway or before a restart)");
  }
  it->second->last_used = now;
  return it->second;
}

Result<kv::TxnHandle> ClusterKv::BeginTxn() {
  const auto deadline = Clock::now() + options_.request_timeout;
  ASSIGN_OR_RETURN(uint64_t start_ts, FreshTimestamp(deadline));
  auto session = std::make_shared<TxnSession>();
  session->start_ts = start_ts;
  std::lock_guard lock(txns_mu_);
  const auto now = Clock::now();
  std::erase_if(
      txns_, [&](const auto& e) { return now - e.second->last_used > options_.txn_idle_timeout; });
  if (txns_.size() >= options_.max_open_txns) {
    return Status::ResourceExhausted("too many open transactions (" +
                                     std::to_string(options_.max_open_txns) + ")");
  }
  session->last_used = now;
  std::string id = NewTxnId();
  txns_[id] = std::move(session);
  return kv::TxnHandle{std::move(id), start_ts};
}

Result<kv::GetResult> ClusterKv::TxnGet(const std::string& txn, const kv::TxnRead& read) {
  const auto deadline = Clock::now() + options_.request_timeout;
  RETURN_IF_ERROR(ValidateKey(read.key, options_.limits));
  ASSIGN_OR_RETURN(auto s, FindTxn(txn));
  std::lock_guard lock(s->mu);
  ASSIGN_OR_RETURN(uint32_t id, CollectionId(read.collection, deadline));
  auto it = s->writes.find(mvcc::EncodeRowKey(kTenant, id, read.key));
  if (it != s->writes.end()) {
    // Its own write: version 0 until it commits.
    kv::GetResult g;
    g.found = !it->second.is_delete;
    if (g.found) g.value = it->second.value;
    return g;
  }
  return Get({read.collection, read.key, kv::Consistency::kSnapshot, s->start_ts});
}

Status ClusterKv::TxnWrite(const std::string& txn, const kv::BatchOp& op) {
  const auto deadline = Clock::now() + options_.request_timeout;
  RETURN_IF_ERROR(ValidateBatch({{op}, ""}, options_.limits));
  if (op.if_version) {
    return Status::InvalidArgument(
        "an interactive transaction's writes take no if_version: read the key in the "
        "transaction instead (a change after its start is a conflict at commit)");
  }
  ASSIGN_OR_RETURN(auto s, FindTxn(txn));
  std::lock_guard lock(s->mu);
  ASSIGN_OR_RETURN(auto info, Collection(op.collection, deadline));
  if (HasRules(info) && op.kind == kv::BatchOp::Kind::kPut) {
    // Checked now, so that the write that breaks a rule is the one refused.
    ASSIGN_OR_RETURN(DocRules rules, RulesOf(info));
    ASSIGN_OR_RETURN(auto doc, document::ParseDocument(op.value));
    RETURN_IF_ERROR(CheckDocument(rules, op.key, doc, options_.limits.max_key_bytes));
  }
  const uint32_t id = info.id;
  const std::string row = mvcc::EncodeRowKey(kTenant, id, op.key);
  if (!s->writes.count(row) && s->writes.size() >= options_.limits.max_batch_ops) {
    return Status::InvalidArgument("a transaction may write at most " +
                                   std::to_string(options_.limits.max_batch_ops) + " keys");
  }
  s->commit_below = LeastLease(s->commit_below, info.lease_end_ts);
  auto& w = s->writes[row];
  w.is_delete = op.kind == kv::BatchOp::Kind::kDelete;
  w.value = w.is_delete ? std::string() : op.value;
  w.collection = id;
  w.collection_name = op.collection;
  w.key = op.key;
  return Status::OK();
}

Result<kv::ScanResult> ClusterKv::TxnScan(const std::string& txn, const kv::ScanRequest& req) {
  const auto deadline = Clock::now() + options_.request_timeout;
  ASSIGN_OR_RETURN(auto s, FindTxn(txn));
  std::lock_guard lock(s->mu);
  if (req.consistency != kv::Consistency::kLinearizable || req.at != 0) {
    return Status::InvalidArgument("a transaction's scan reads at its own snapshot");
  }
  kv::ScanRequest at = req;
  at.consistency = kv::Consistency::kSnapshot;
  at.at = s->start_ts;
  ASSIGN_OR_RETURN(auto out, Scan(at));
  ASSIGN_OR_RETURN(uint32_t id, CollectionId(req.collection, deadline));
  // The range the answer covers, in user keys: [lo, hi) (empty hi: unbounded).
  auto [lo, hi] = ScanRange(req.start, req.end, req.prefix);
  if (out.next) (req.reverse ? lo : hi) = *out.next;
  // The transaction's own writes in that range, if any, replace what the snapshot has.
  std::vector<const TxnSession::Write*> own;
  for (const auto& [row, w] : s->writes) {
    if (w.collection == id && w.key >= lo && (hi.empty() || w.key < hi)) own.push_back(&w);
  }
  if (own.empty()) return out;
  std::map<std::string, kv::KeyValue> merged;
  for (auto& item : out.items) {
    std::string key = item.key;
    merged.emplace(std::move(key), std::move(item));
  }
  for (const auto* w : own) {
    if (w->is_delete) {
      merged.erase(w->key);
    } else {
      merged[w->key] = kv::KeyValue{w->key, w->value, 0};
    }
  }
  const size_t limit = req.limit == 0 ? options_.limits.default_scan_limit : req.limit;
  std::vector<kv::KeyValue> items;
  for (auto& [k, v] : merged) items.push_back(std::move(v));
  if (req.reverse) std::reverse(items.begin(), items.end());
  if (items.size() > limit) {
    out.next = req.reverse ? items[limit - 1].key : items[limit].key;
    items.resize(limit);
  }
  out.items = std::move(items);
  return out;
}

Result<uint64_t> ClusterKv::CommitTxn(const std::string& txn) {
  const auto deadline = Clock::now() + options_.request_timeout;
  ASSIGN_OR_RETURN(auto s, FindTxn(txn));
  {
    std::lock_guard lock(txns_mu_);
    txns_.erase(txn);  // finished whatever the outcome: a retry must begin anew
  }
  std::lock_guard lock(s->mu);
  if (s->writes.empty()) return s->start_ts;  // read-only: its snapshot
  std::vector<kv::BatchOp> ops;
  ops.reserve(s->writes.size());
  for (auto& [row, w] : s->writes) {
    ops.push_back({w.is_delete ? kv::BatchOp::Kind::kDelete : kv::BatchOp::Kind::kPut,
                   w.collection_name, w.key, std::move(w.value), std::nullopt});
  }
  // Documents get their entries as of the snapshot: a document changed since is a
  // conflict on its row at commit.
  uint64_t commit_below = s->commit_below;
  ASSIGN_OR_RETURN(auto mutations, PlanOps(ops, s->start_ts, deadline, &commit_below));
  return CommitMutations(s->start_ts, std::move(mutations), deadline, commit_below);
}

Status ClusterKv::RollbackTxn(const std::string& txn) {
  std::lock_guard lock(txns_mu_);
  if (txns_.erase(txn) == 0) {
    return Status::NotFound("transaction '" + txn.substr(0, 64) + "' is not open here");
  }
  return Status::OK();  // nothing was sent: its writes were buffered here
}

}  // namespace gojodb::gateway
