#include "api/grpc/shard_service.h"

#include <algorithm>
#include <optional>
#include <thread>

#include "api/grpc/convert.h"
#include "api/grpc/shard_convert.h"
#include "core/document/document.h"
#include "core/mvcc/key_codec.h"
#include "core/query/parallel_aggregation.h"
#include "core/query/shard_query.h"

namespace gojodb::rpc {
namespace {

sharding::Route RouteOf(const v1::ShardRoute& r) {
  return {r.shard(), {r.conf_ver(), r.version()}};
}

kv::Consistency ConsistencyOf(v1::ReadConsistency c) {
  switch (c) {
    case v1::READ_SNAPSHOT:
      return kv::Consistency::kSnapshot;
    case v1::READ_STALE:
      return kv::Consistency::kStale;
    default:
      return kv::Consistency::kLinearizable;
  }
}

constexpr size_t kMaxScanLimit = 10000;
// Threads one aggregating query call spreads its documents over (ParallelAggregation).
constexpr unsigned kMaxAggregationWorkers = 4;

Result<sharding::WriteCommand> CommandOf(const v1::ShardWriteRequest& req) {
  if (req.mutations().empty())
    return Status::InvalidArgument("a write needs at least one mutation");
  sharding::WriteCommand w;
  w.request_id = req.request_id();
  w.fingerprint = req.fingerprint();
  w.start_ts = req.start_ts();
  w.commit_below = req.commit_below();
  w.mutations.reserve(req.mutations_size());
  for (const auto& m : req.mutations()) {
    if (m.row_key().empty()) return Status::InvalidArgument("empty row key");
    sharding::Mutation out;
    out.is_delete = m.delete_();
    out.row_key = m.row_key();
    out.value = m.value();
    if (m.has_if_version()) out.if_version = m.if_version();
    w.mutations.push_back(std::move(out));
  }
  return w;
}

std::vector<std::string> RowsOf(const google::protobuf::RepeatedPtrField<std::string>& rows) {
  return {rows.begin(), rows.end()};
}

// The command a Txn request asks for, and one of its rows (for the range check).
Result<std::pair<std::string, std::string>> TxnCommandOf(const v1::ShardTxnRequest& req) {
  auto need_rows = [](int n) -> Status {
    if (n == 0) return Status::InvalidArgument("a transaction command needs at least one row");
    return Status::OK();
  };
  switch (req.op_case()) {
    case v1::ShardTxnRequest::kPrewrite: {
      const auto& p = req.prewrite();
      RETURN_IF_ERROR(need_rows(p.mutations_size()));
      txn::PrewriteRequest r;
      r.start_ts = p.start_ts();
      r.primary = p.primary();
      r.ttl_ms = p.ttl_ms();
      for (const auto& m : p.mutations()) {
        if (m.row_key().empty()) return Status::InvalidArgument("empty row key");
        txn::TxnMutation t;
        switch (m.kind()) {
          case v1::TxnMutation::PUT:
            t.kind = txn::LockKind::kPut;
            break;
          case v1::TxnMutation::DELETE:
            t.kind = txn::LockKind::kDelete;
            break;
          case v1::TxnMutation::CHECK:
            t.kind = txn::LockKind::kCheck;
            break;
          default:
            return Status::InvalidArgument("unknown mutation kind");
        }
        t.row_key = m.row_key();
        if (t.kind == txn::LockKind::kPut) t.value = m.value();
        if (m.has_if_version()) t.if_version = m.if_version();
        r.mutations.push_back(std::move(t));
      }
      return std::pair{sharding::EncodePrewriteCommand(r), p.mutations(0).row_key()};
    }
    case v1::ShardTxnRequest::kCommit: {
      const auto& c = req.commit();
      RETURN_IF_ERROR(need_rows(c.rows_size()));
      return std::pair{sharding::EncodeTxnCommitCommand(c.start_ts(), c.commit_ts(),
                                                        RowsOf(c.rows()), c.primary()),
                       c.rows(0)};
    }
    case v1::ShardTxnRequest::kRollback: {
      const auto& r = req.rollback();
      RETURN_IF_ERROR(need_rows(r.rows_size()));
      return std::pair{sharding::EncodeTxnRollbackCommand(r.start_ts(), RowsOf(r.rows())),
                       r.rows(0)};
    }
    case v1::ShardTxnRequest::kCheckStatus: {
      const auto& c = req.check_status();
      if (c.primary().empty()) return Status::InvalidArgument("a status check needs the primary");
      txn::CheckStatusRequest r{c.primary(), c.start_ts(), c.current_ts(), c.caller_ts(),
                                c.rollback_if_missing()};
      return std::pair{sharding::EncodeCheckTxnStatusCommand(r), c.primary()};
    }
    case v1::ShardTxnRequest::kHeartbeat: {
      const auto& h = req.heartbeat();
      if (h.primary().empty()) return Status::InvalidArgument("a heartbeat needs the primary");
      return std::pair{sharding::EncodeTxnHeartbeatCommand(h.primary(), h.start_ts(), h.ttl_ms()),
                       h.primary()};
    }
    default:
      return Status::InvalidArgument("a transaction request names no command");
  }
}

// The get items of `req` a batch reads together: two or more, all of them snapshot gets
// at one timestamp through one route, with no resolved locks. None otherwise.
std::vector<int> SnapshotGetsReadTogether(const v1::ShardBatchRequest& req) {
  std::vector<int> out;
  const v1::ShardGetRequest* first = nullptr;
  for (int i = 0; i < req.items_size(); ++i) {
    if (req.items(i).op_case() != v1::ShardBatchItem::kGet) continue;
    const auto& g = req.items(i).get();
    if (g.consistency() != v1::READ_SNAPSHOT || g.at() == 0 || g.at() == mvcc::kMaxTimestamp ||
        g.resolved_size() > 0 || g.row_key().empty()) {
      return {};
    }
    if (first == nullptr) {
      first = &g;
    } else if (g.at() != first->at() || g.route().shard() != first->route().shard() ||
               g.route().conf_ver() != first->route().conf_ver() ||
               g.route().version() != first->route().version()) {
      return {};
    }
    out.push_back(i);
  }
  if (out.size() < 2) return {};
  return out;
}

// The scan a query names: its collection's range at its read timestamp, examining at
// most max_examined rows (0: `cap`), and never more than `cap`.
mvcc::ScanOptions ScanOf(const v1::ShardQueryRequest& req, uint32_t cap) {
  mvcc::ScanOptions o;
  o.tenant = req.tenant();
  o.collection = req.collection();
  o.start = req.start();
  o.end = req.end();
  o.limit = req.max_examined() == 0 ? cap : std::min(req.max_examined(), cap);
  o.read_ts = req.read_ts();
  return o;
}

}  // namespace

// --- gRPC: each method runs its ShardClient namesake under the client's deadline ---

grpc::Status ShardKvService::Write(grpc::ServerContext* ctx, const v1::ShardWriteRequest* req,
                                   v1::ShardWriteResponse* resp) {
  return Reply(ctx, Write(*req, resp, GrpcDeadline(ctx)));
}
grpc::Status ShardKvService::Get(grpc::ServerContext* ctx, const v1::ShardGetRequest* req,
                                 v1::ShardGetResponse* resp) {
  return Reply(ctx, Get(*req, resp, GrpcDeadline(ctx)));
}
grpc::Status ShardKvService::Scan(grpc::ServerContext* ctx, const v1::ShardScanRequest* req,
                                  v1::ShardScanResponse* resp) {
  return Reply(ctx, Scan(*req, resp, GrpcDeadline(ctx)));
}
grpc::Status ShardKvService::Txn(grpc::ServerContext* ctx, const v1::ShardTxnRequest* req,
                                 v1::ShardTxnResponse* resp) {
  return Reply(ctx, Txn(*req, resp, GrpcDeadline(ctx)));
}
grpc::Status ShardKvService::Batch(grpc::ServerContext* ctx, const v1::ShardBatchRequest* req,
                                   v1::ShardBatchResponse* resp) {
  return Reply(ctx, Batch(*req, resp, GrpcDeadline(ctx)));
}
grpc::Status ShardKvService::Query(grpc::ServerContext* ctx, const v1::ShardQueryRequest* req,
                                   v1::ShardQueryResponse* resp) {
  return Reply(ctx, Query(*req, resp, GrpcDeadline(ctx)));
}

grpc::Status ShardKvService::Reply(grpc::ServerContext* ctx, const Status& s) {
  if (s.ok()) return grpc::Status::OK;
  AddDetailsToContext(s, ctx);
  return ToGrpc(s);
}

ShardClient::Deadline ShardKvService::GrpcDeadline(const grpc::ServerContext* ctx) {
  const auto left = ctx->deadline() - std::chrono::system_clock::now();
  return std::chrono::steady_clock::now() +
         std::chrono::duration_cast<std::chrono::steady_clock::duration>(
             std::max(left, std::chrono::system_clock::duration::zero()));
}

// --- The calls ---

Status ShardKvService::Run(Deadline deadline, google::protobuf::Message* resp,
                           const std::function<Status(Deadline)>& body) {
  const auto now = std::chrono::steady_clock::now();
  resp->Clear();
  Status s = body(std::min<Deadline>(std::max(deadline, now), now + timeout_));
  if (!s.ok()) resp->Clear();
  return s;
}

Status ShardKvService::Txn(const v1::ShardTxnRequest& req, v1::ShardTxnResponse* resp,
                           Deadline deadline) {
  return Run(deadline, resp, [&](Deadline d) -> Status {
    ASSIGN_OR_RETURN(auto command, TxnCommandOf(req));
    ASSIGN_OR_RETURN(auto out, store_->Txn(RouteOf(req.route()), command.first, command.second, d));
    ToProto(out, resp);
    return Status::OK();
  });
}

Status ShardKvService::Write(const v1::ShardWriteRequest& req, v1::ShardWriteResponse* resp,
                             Deadline deadline) {
  return Run(deadline, resp, [&](Deadline d) -> Status {
    ASSIGN_OR_RETURN(auto w, CommandOf(req));
    ASSIGN_OR_RETURN(auto r, store_->Write(RouteOf(req.route()), std::move(w), d));
    resp->set_version(r.version);
    resp->set_existed(r.existed);
    return Status::OK();
  });
}

Status ShardKvService::DoGet(const v1::ShardGetRequest& req,
                             std::chrono::steady_clock::time_point deadline,
                             v1::ShardGetResponse* resp) {
  if (req.row_key().empty()) return Status::InvalidArgument("empty row key");
  const auto c = ConsistencyOf(req.consistency());
  if (c == kv::Consistency::kSnapshot && req.at() == 0) {
    return Status::InvalidArgument("a snapshot read needs a timestamp (at)");
  }
  const std::vector<uint64_t> resolved(req.resolved().begin(), req.resolved().end());
  ASSIGN_OR_RETURN(auto r,
                   store_->Get(RouteOf(req.route()), req.row_key(), c,
                               req.at() == 0 ? mvcc::kMaxTimestamp : req.at(), deadline, resolved));
  if (r && !r->deleted) {
    resp->set_found(true);
    resp->set_value(std::move(r->value));
    resp->set_version(r->version);
  }
  return Status::OK();
}

Status ShardKvService::Get(const v1::ShardGetRequest& req, v1::ShardGetResponse* resp,
                           Deadline deadline) {
  return Run(deadline, resp, [&](Deadline d) { return DoGet(req, d, resp); });
}

Status ShardKvService::Batch(const v1::ShardBatchRequest& req, v1::ShardBatchResponse* resp,
                             Deadline deadline) {
  return Run(deadline, resp, [&](Deadline d) { return DoBatch(req, d, resp); });
}

Status ShardKvService::DoBatch(const v1::ShardBatchRequest& req, Deadline deadline,
                               v1::ShardBatchResponse* resp) {
  const int n = req.items_size();
  if (n == 0 || n > kMaxBatchItems) {
    return Status::InvalidArgument("a batch holds 1.." + std::to_string(kMaxBatchItems) +
                                   " items, not " + std::to_string(n));
  }
  const auto now = std::chrono::steady_clock::now();
  auto item_deadline = [&](const v1::ShardBatchItem& item) {
    if (item.timeout_ms() == 0) return deadline;
    return std::min(deadline, now + std::chrono::milliseconds(item.timeout_ms()));
  };
  for (int i = 0; i < n; ++i) resp->add_results();
  // Snapshot gets of one shard at one timestamp (a router's multi-get) are read together,
  // at one snapshot; any error there, and each is read on its own for its own status.
  const std::vector<int> together = SnapshotGetsReadTogether(req);
  std::vector<bool> done(n, false);
  if (!together.empty()) {
    const auto& first = req.items(together[0]).get();
    std::vector<std::string> rows;
    rows.reserve(together.size());
    auto group_deadline = deadline;
    for (int i : together) {
      rows.push_back(req.items(i).get().row_key());
      group_deadline = std::min(group_deadline, item_deadline(req.items(i)));
    }
    size_t k = 0;
    auto read = store_->GetEach(
        RouteOf(first.route()), rows, first.at(), group_deadline, {},
        [&](const std::string&, const std::optional<mvcc::VersionedValue>& v) -> Result<bool> {
          auto* get = resp->mutable_results(together[k++])->mutable_get();
          if (v && !v->deleted) {
            get->set_found(true);
            get->set_value(v->value);
            get->set_version(v->version);
          }
          return true;
        });
    if (!read.ok() || *read != rows.size()) {
      for (int i : together) resp->mutable_results(i)->Clear();
    } else {
      for (int i : together) done[i] = true;
    }
  }
  // Reads first (they wait for nothing but a lease check), then the writes, all proposed
  // before any is waited for.
  std::vector<sharding::Store::RoutedWrite> writes;
  std::vector<int> write_items;
  for (int i = 0; i < n; ++i) {
    const auto& item = req.items(i);
    auto* result = resp->mutable_results(i);
    switch (item.op_case()) {
      case v1::ShardBatchItem::kWrite: {
        auto w = CommandOf(item.write());
        if (!w.ok()) {
          SetStatus(w.status(), result);
          break;
        }
        writes.push_back({RouteOf(item.write().route()), std::move(*w), item_deadline(item)});
        write_items.push_back(i);
        break;
      }
      case v1::ShardBatchItem::kGet:
        if (done[i]) break;
        SetStatus(DoGet(item.get(), item_deadline(item), result->mutable_get()), result);
        if (result->code() != 0) result->clear_get();
        break;
      default:
        SetStatus(Status::InvalidArgument("batch item " + std::to_string(i) + " has no operation"),
                  result);
    }
  }
  if (!writes.empty()) {
    auto outcomes = store_->WriteAll(std::move(writes));
    for (size_t k = 0; k < outcomes.size(); ++k) {
      auto* result = resp->mutable_results(write_items[k]);
      if (!outcomes[k].ok()) {
        SetStatus(outcomes[k].status(), result);
        continue;
      }
      result->mutable_write()->set_version(outcomes[k]->version);
      result->mutable_write()->set_existed(outcomes[k]->existed);
    }
  }
  return Status::OK();
}

Status ShardKvService::Scan(const v1::ShardScanRequest& req, v1::ShardScanResponse* resp,
                            Deadline deadline) {
  return Run(deadline, resp, [&](Deadline d) { return DoScan(req, d, resp); });
}

Status ShardKvService::DoScan(const v1::ShardScanRequest& req, Deadline deadline,
                              v1::ShardScanResponse* resp) {
  if (req.limit() == 0 || req.limit() > kMaxScanLimit) {
    return Status::InvalidArgument("scan limit must be 1.." + std::to_string(kMaxScanLimit));
  }
  const auto c = ConsistencyOf(req.consistency());
  mvcc::ScanOptions o;
  o.tenant = req.tenant();
  o.collection = req.collection();
  o.start = req.start();
  o.end = req.end();
  o.limit = req.limit();
  o.reverse = req.reverse();
  o.read_ts = req.read_ts() == 0 ? mvcc::kMaxTimestamp : req.read_ts();
  const std::vector<uint64_t> resolved(req.resolved().begin(), req.resolved().end());
  ASSIGN_OR_RETURN(auto r, store_->Scan(RouteOf(req.route()), std::move(o), c, deadline, resolved));
  for (auto& i : r.items) {
    auto* item = resp->add_items();
    item->set_key(std::move(i.key));
    item->set_value(std::move(i.value));
    item->set_version(i.version);
  }
  if (r.next) {
    resp->set_has_next(true);
    resp->set_next(std::move(*r.next));
  }
  return Status::OK();
}

Status ShardKvService::Query(const v1::ShardQueryRequest& req, v1::ShardQueryResponse* resp,
                             Deadline deadline) {
  return Run(deadline, resp, [&](Deadline d) { return DoQuery(req, d, resp); });
}

// An index scan joined to its documents (ShardQueryRequest.index_join): the entries, then
// the documents of this shard they name, each read as a `keys` query reads it; the
// documents of other shards go back as `foreign`. Where `run` stops (its limit of matches
// or bytes), the next call starts at the entry after the last document it took.
Status ShardKvService::JoinIndex(const v1::ShardQueryRequest& req, Deadline deadline,
                                 query::ShardQueryRun& run, v1::ShardQueryResponse* resp) {
  const auto& join = req.index_join();
  if (join.fields() == 0 || join.fields() > kMaxJoinFields) {
    return Status::InvalidArgument("an index join names an index of 1.." +
                                   std::to_string(kMaxJoinFields) + " fields");
  }
  if (join.collection() == req.collection()) {
    return Status::InvalidArgument("an index join reads documents of another collection");
  }
  document::IndexSpec index;
  index.id = req.collection();
  index.fields.resize(join.fields());
  index.unique = join.unique();
  const std::vector<uint64_t> resolved(req.resolved().begin(), req.resolved().end());
  struct Entry {
    std::string key;  // the entry's user key
    std::string doc;  // the document's user key
  };
  std::vector<Entry> entries;
  std::vector<size_t> asked;  // with entry_keys: the place of each entry found among them
  std::optional<std::string> scan_next;
  const bool points = join.entry_keys_size() > 0;
  if (points) {
    if (!join.unique()) {
      return Status::InvalidArgument("an index join reads entries by key only of a unique index");
    }
    if (join.entry_keys_size() > kMaxBatchItems) {
      return Status::InvalidArgument("an index join reads at most " +
                                     std::to_string(kMaxBatchItems) + " entries by key");
    }
    std::vector<std::string> entry_rows;
    for (const auto& k : join.entry_keys()) {
      entry_rows.push_back(mvcc::EncodeRowKey(req.tenant(), req.collection(), k));
    }
    size_t i = 0;
    RETURN_IF_ERROR(
        store_
            ->GetEach(
                RouteOf(req.route()), entry_rows, req.read_ts(), deadline, resolved,
                [&](const std::string&,
                    const std::optional<mvcc::VersionedValue>& v) -> Result<bool> {
                  const size_t at = i++;
                  if (!v || v->deleted) return true;
                  const std::string& key = join.entry_keys(static_cast<int>(at));
                  ASSIGN_OR_RETURN(std::string doc, document::DocKeyOf(index, {key, v->value}));
                  entries.push_back({key, std::move(doc)});
                  asked.push_back(at);
                  return true;
                })
            .status());
  } else {
    mvcc::ScanOptions o = ScanOf(req, kMaxBatchItems);
    o.reverse = req.reverse();
    ASSIGN_OR_RETURN(
        scan_next,
        store_->ScanEach(
            RouteOf(req.route()), std::move(o), deadline, resolved,
            [&](const mvcc::ScanItem& item) -> Result<bool> {
              ASSIGN_OR_RETURN(std::string doc, document::DocKeyOf(index, {item.key, item.value}));
              entries.push_back({item.key, std::move(doc)});
              return true;
            }));
  }
  // Which documents are this shard's. A descriptor out of date only sends a document
  // the wrong way: one read here is refused by GetEach (EPOCH_NOT_MATCH, and the router
  // tries again), one sent back is read by the router from its own shard.
  ASSIGN_OR_RETURN(const sharding::ShardRecord shard, store_->DescriptorOf(req.route().shard()));
  std::vector<size_t> local;
  std::vector<std::string> rows;
  // Each document sent back may match: no more of them than the call's limit of matches,
  // so a walk that wants few (an ordered one, docs/architecture/documents.md) reads few.
  // The entries past that are for a later call.
  std::optional<std::string> cut_next;
  size_t foreign = 0;
  for (size_t i = 0; i < entries.size(); ++i) {
    std::string row = mvcc::EncodeRowKey(req.tenant(), join.collection(), entries[i].doc);
    if (!sharding::InRange(shard, row)) {
      if (!points && req.limit() > 0 && ++foreign > req.limit()) {
        // (i > 0: the limit is at least 1.) Reverse: the next exclusive end.
        cut_next = req.reverse() ? entries[i - 1].key : entries[i].key;
        entries.resize(i);
        break;
      }
      continue;
    }
    local.push_back(i);
    rows.push_back(std::move(row));
  }
  size_t taken = entries.size();  // entries [0, taken) are answered for
  size_t j = 0;
  auto read = store_->GetEach(
      RouteOf(req.route()), rows, req.read_ts(), deadline, resolved,
      [&](const std::string&, const std::optional<mvcc::VersionedValue>& v) -> Result<bool> {
        const size_t e = local[j++];
        if (!v || v->deleted) {
          resp->add_missing(entries[e].doc);
          return true;
        }
        ASSIGN_OR_RETURN(bool more, run.Add(entries[e].doc, v->value, v->version));
        if (!more) taken = e + 1;
        return more;
      });
  RETURN_IF_ERROR(read.status());
  for (size_t i = 0, l = 0; i < taken; ++i) {
    if (l < local.size() && local[l] == i) {
      ++l;
    } else {
      resp->add_foreign(entries[i].doc);
    }
  }
  if (points) {
    resp->set_keys_read(
        static_cast<uint32_t>(taken < entries.size() ? asked[taken] : join.entry_keys_size()));
  } else if (taken < entries.size()) {
    // (taken > 0: it is set past the entry whose document ended the run.)
    resp->set_has_next(true);
    resp->set_next(req.reverse() ? entries[taken - 1].key : entries[taken].key);
  } else if (cut_next) {
    resp->set_has_next(true);
    resp->set_next(std::move(*cut_next));
  } else if (scan_next) {
    resp->set_has_next(true);
    resp->set_next(std::move(*scan_next));
  }
  resp->set_joined(true);
  resp->set_reversed(req.reverse());
  return Status::OK();
}

Status ShardKvService::DoQuery(const v1::ShardQueryRequest& req, Deadline deadline,
                               v1::ShardQueryResponse* resp) {
  const bool aggregating = !req.aggregates_json().empty();
  if (!aggregating && (req.limit() == 0 || req.limit() > kMaxScanLimit)) {
    return Status::InvalidArgument("query limit must be 1.." + std::to_string(kMaxScanLimit));
  }
  if (req.read_ts() == 0) {
    return Status::InvalidArgument("a shard query needs a read timestamp");
  }
  if (req.has_index_join() && req.keys_size() > 0) {
    return Status::InvalidArgument("a shard query reads keys or joins an index, not both");
  }
  if (req.reverse() && (!req.has_index_join() || req.index_join().entry_keys_size() > 0)) {
    return Status::InvalidArgument("only an index join over a range reads backward");
  }
  query::ShardQueryText text;
  text.filter_json = req.filter_json();
  text.projection.assign(req.projection().begin(), req.projection().end());
  text.sort.assign(req.sort().begin(), req.sort().end());
  text.group_by_json = req.group_by_json();
  text.aggregates_json = req.aggregates_json();
  text.limit = req.limit();
  text.max_bytes = kMaxQueryBytes;
  ASSIGN_OR_RETURN(auto q, query::ParseShardQuery(text));
  query::ShardQueryRun run(*q);
  if (req.keys_size() > 0) {
    if (req.keys_size() > kMaxBatchItems) {
      return Status::InvalidArgument("a shard query reads at most " +
                                     std::to_string(kMaxBatchItems) + " keys");
    }
    std::vector<std::string> rows;
    rows.reserve(req.keys_size());
    for (const auto& k : req.keys()) {
      rows.push_back(mvcc::EncodeRowKey(req.tenant(), req.collection(), k));
    }
    const std::vector<uint64_t> resolved(req.resolved().begin(), req.resolved().end());
    int i = 0;
    auto read = store_->GetEach(
        RouteOf(req.route()), rows, req.read_ts(), deadline, resolved,
        [&](const std::string&, const std::optional<mvcc::VersionedValue>& v) -> Result<bool> {
          const std::string& key = req.keys(i++);
          if (!v || v->deleted) {
            resp->add_missing(key);
            return true;
          }
          return run.Add(key, v->value, v->version);
        });
    RETURN_IF_ERROR(read.status());
    resp->set_keys_read(static_cast<uint32_t>(*read));
  } else if (req.has_index_join()) {
    RETURN_IF_ERROR(JoinIndex(req, deadline, run, resp));
  } else {
    mvcc::ScanOptions o = ScanOf(req, kMaxQueryExamined);
    const std::vector<uint64_t> resolved(req.resolved().begin(), req.resolved().end());
    Result<std::optional<std::string>> next = std::optional<std::string>();
    if (aggregating) {
      // The scan feeds workers that parse and aggregate (most of an aggregation's work):
      // one per core, at most kMaxAggregationWorkers (a router walks up to 8 ranges at once).
      query::ParallelAggregation par(
          *q, std::clamp(std::thread::hardware_concurrency(), 1u, kMaxAggregationWorkers));
      next = store_->ScanEach(RouteOf(req.route()), std::move(o), deadline, resolved,
                              [&](const mvcc::ScanItem& item) -> Result<bool> {
                                RETURN_IF_ERROR(par.Add(item.value));
                                return true;
                              });
      RETURN_IF_ERROR(next.status());
      RETURN_IF_ERROR(par.Finish(&run));
    } else {
      next = store_->ScanEach(
          RouteOf(req.route()), std::move(o), deadline, resolved,
          [&](const mvcc::ScanItem& item) { return run.Add(item.key, item.value, item.version); });
      RETURN_IF_ERROR(next.status());
    }
    if (*next) {
      resp->set_has_next(true);
      resp->set_next(std::move(**next));
    }
  }
  for (auto& m : run.matches()) {
    auto* out = resp->add_matches();
    out->set_key(std::move(m.key));
    out->set_value(std::move(m.value));
    out->set_version(m.version);
    for (auto& v : m.sort_values) out->add_sort_values(std::move(v));
  }
  resp->set_examined(run.examined());
  resp->set_matched(run.matched());
  if (aggregating) resp->set_partial(run.EncodePartial());
  return Status::OK();
}

}  // namespace gojodb::rpc
