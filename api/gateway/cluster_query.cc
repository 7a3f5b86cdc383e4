// Queries pushed to the shards: the router walks a collection's range shard by shard
// with ShardKv.Query, and the shards answer only their matches or a partial aggregate
// (docs/architecture/documents.md, "Pushed to the shards").
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <optional>
#include <thread>

#include "api/gateway/call_util.h"
#include "api/gateway/cluster_kv.h"
#include "api/grpc/convert.h"
#include "core/mvcc/key_codec.h"
#include "internal/failpoint.h"

namespace gojodb::gateway {
namespace {

constexpr uint32_t kTenant = controller::kDefaultTenantId;

// The user key whose row key is `row`, if it is one of the collection's ("" for a row at
// or before the collection's start); nullopt for anything else.
std::optional<std::string> UserKeyOf(const std::string& prefix, const std::string& row) {
  if (row <= prefix) return std::string();
  if (row.compare(0, prefix.size(), prefix) != 0) return std::nullopt;
  std::string user;
  auto n = mvcc::DecodeComparableBytes(std::string_view(row).substr(prefix.size()), &user);
  if (!n.ok() || prefix.size() + *n != row.size()) return std::nullopt;
  return user;
}

}  // namespace

Status ClusterKv::QueryRange(uint32_t id, std::string lo, std::string hi, uint64_t read_ts,
                             v1::ShardQueryRequest tmpl, Clock::time_point deadline,
                             const QueryAnswer& each) {
  tmpl.set_tenant(kTenant);
  tmpl.set_collection(id);
  tmpl.set_read_ts(read_ts);
  // Bound the request to [lo, hi) too, so a node whose shard reaches past them (a map
  // newer than the caller's runs) answers for this walk's part only.
  const std::string prefix = mvcc::CollectionPrefix(kTenant, id);
  if (auto start = UserKeyOf(prefix, lo); start && *start > tmpl.start()) tmpl.set_start(*start);
  if (auto end = UserKeyOf(prefix, hi);
      end && !end->empty() && (tmpl.end().empty() || *end < tmpl.end())) {
    tmpl.set_end(*end);
  }
  // Reverse (an index join read backward): from the shard that holds the range's end.
  const bool reverse = tmpl.reverse();
  auto locate = [&]() -> Result<sharding::ShardRecord> {
    if (!reverse) return routes_.Locate(lo);
    ASSIGN_OR_RETURN(auto shards, routes_.Range(lo, hi));
    if (shards.empty()) return Status::Unavailable("no shard is known for the range");
    return shards.back();
  };
  std::vector<uint64_t> resolved;
  while (lo < hi) {
    v1::ShardQueryResponse resp;
    sharding::ShardRecord used;
    RETURN_IF_ERROR(WithLocksResolved(read_ts, &resolved, deadline, [&] {
      return CallShardAt(
          locate, Target::kLeader, /*write=*/false, false, deadline,
          [&](const sharding::ShardRecord& shard, const NodeConn& node, Clock::time_point d) {
            v1::ShardQueryRequest q = tmpl;
            SetRoute(shard, q.mutable_route());
            q.mutable_resolved()->Assign(resolved.begin(), resolved.end());
            used = shard;
            return node.client->Query(q, &resp, d);
          });
    }));
    const bool has_next = resp.has_next();
    std::string next = resp.next();
    ASSIGN_OR_RETURN(bool more, each(resp, &tmpl));
    if (!more) return Status::OK();
    if (has_next) {
      // The node stopped inside its range (its budget, or enough matches): go on there.
      if (reverse) {
        tmpl.set_end(next);
        hi = std::min(hi, mvcc::EncodeRowKey(kTenant, id, next));
      } else {
        tmpl.set_start(next);
        lo = std::max(lo, mvcc::EncodeRowKey(kTenant, id, next));
      }
      continue;
    }
    // The shard has nothing more in the range: move past it. (Backward, the node clips
    // `end` to its own range.)
    if (reverse) {
      if (used.start_key <= lo) break;
      hi = std::min(hi, used.start_key);
    } else {
      if (used.end_key.empty() || used.end_key >= hi) break;
      lo = std::max(lo, used.end_key);
    }
  }
  return Status::OK();
}

Status ClusterKv::QueryCollection(uint32_t id, uint64_t read_ts, const v1::ShardQueryRequest& tmpl,
                                  Clock::time_point deadline, const QueryAnswer& each) {
  const std::string prefix = mvcc::CollectionPrefix(kTenant, id);
  const std::string lo = prefix, hi = mvcc::PrefixSuccessor(prefix);
  auto shards = routes_.Range(lo, hi);
  if (!shards.ok()) {
    RefreshMap(deadline);
    shards = routes_.Range(lo, hi);
  }
  // Runs of adjacent shards, each walked by its own thread. A stale map only makes the
  // runs uneven: each walk follows the shards it meets to the end of its run.
  std::vector<std::string> cuts = {lo};
  if (shards.ok() && shards->size() > 1) {
    const size_t n = shards->size(), runs = std::min(n, kQueryFanOut);
    for (size_t r = 1; r < runs; ++r) {
      const std::string& start = (*shards)[r * n / runs].start_key;
      if (start > cuts.back() && start < hi) cuts.push_back(start);
    }
  }
  cuts.push_back(hi);
  if (cuts.size() == 2) return QueryRange(id, lo, hi, read_ts, tmpl, deadline, each);
  std::vector<Status> results(cuts.size() - 1);
  std::vector<std::thread> threads;
  std::atomic<bool> failed{false};  // one walk's error stops the others
  const QueryAnswer guarded = [&](v1::ShardQueryResponse& resp,
                                  v1::ShardQueryRequest* next) -> Result<bool> {
    if (failed.load()) return false;
    return each(resp, next);
  };
  for (size_t i = 0; i + 1 < cuts.size(); ++i) {
    threads.emplace_back([&, i] {
      results[i] = QueryRange(id, cuts[i], cuts[i + 1], read_ts, tmpl, deadline, guarded);
      if (!results[i].ok()) failed.store(true);
    });
  }
  for (auto& t : threads) t.join();
  for (auto& s : results) RETURN_IF_ERROR(s);
  return Status::OK();
}

Status ClusterKv::QueryIndex(uint32_t id, const query::Plan& plan, uint64_t read_ts,
                             const v1::ShardQueryRequest& tmpl, Clock::time_point deadline,
                             const QueryAnswer& each, const std::function<void()>& reset,
                             bool* joined, const std::function<bool()>& enough) {
  const document::IndexSpec& index = *plan.index;
  *joined = false;
  auto entries_then_documents = [&] {
    return ScanIndexKeys(plan, read_ts, deadline, [&](std::vector<std::string>& keys) {
      return QueryKeys(id, keys, read_ts, tmpl, deadline, each);
    });
  };
  v1::ShardQueryRequest t = tmpl;
  auto* join = t.mutable_index_join();
  join->set_collection(id);
  join->set_fields(static_cast<uint32_t>(index.fields.size()));
  join->set_unique(index.unique);
  std::atomic<bool> no_join{false};  // answers may come from several threads at once
  std::atomic<bool> stopped{false};  // `enough` said so
  // Each answer's matches, then the documents it names that other shards hold.
  const QueryAnswer joined_answer = [&](v1::ShardQueryResponse& resp,
                                        v1::ShardQueryRequest* next) -> Result<bool> {
    // (The fail point reads the answer as an older node's, for tests.)
    if (!resp.joined() || !failpoint::Inject("cluster_query.index_join_answer").ok()) {
      no_join = true;
      return Status::Unimplemented("a storage node does not join an index to its documents");
    }
    if (plan.descending && !resp.reversed()) {
      // A node of a version that reads forward only: its answer is in the wrong order.
      no_join = true;
      return Status::Unimplemented("a storage node does not read an index backward");
    }
    std::vector<std::string> foreign;
    foreign.reserve(resp.foreign_size());
    for (auto& k : *resp.mutable_foreign()) foreign.push_back(std::move(k));
    ASSIGN_OR_RETURN(bool more, each(resp, next));
    if (more && !foreign.empty()) {
      RETURN_IF_ERROR(QueryKeys(id, foreign, read_ts, tmpl, deadline, each));
    }
    // Only here, with the documents held elsewhere taken too: they may sort before the
    // matches this shard sent.
    if (more && enough && enough()) {
      stopped = true;
      return false;
    }
    return more;
  };
  auto fall_back = [&] {
    reset();
    return entries_then_documents();
  };
  if (index.unique && !plan.has_range && plan.fixed_fields == index.fields.size()) {
    // Every field fixed: each range holds at most its start key, read by point lookups
    // (which each row's bloom filters can answer) on the shards of the entries.
    std::vector<std::string> entry_keys;
    entry_keys.reserve(plan.ranges.size());
    for (const auto& r : plan.ranges) entry_keys.push_back(r.start);
    if (entry_keys.empty()) {
      *joined = true;
      return Status::OK();
    }
    Status s = QueryKeys(index.id, entry_keys, read_ts, t, deadline, joined_answer);
    if (no_join) return fall_back();
    RETURN_IF_ERROR(s);
    *joined = true;
    return Status::OK();
  }
  const std::string prefix = mvcc::CollectionPrefix(kTenant, index.id);
  for (const auto& r : plan.ranges) {
    v1::ShardQueryRequest ranged = t;
    ranged.set_start(r.start);
    ranged.set_end(r.end);
    ranged.set_reverse(plan.descending);
    const std::string lo = mvcc::EncodeRowKey(kTenant, index.id, r.start);
    const std::string hi = r.end.empty() ? mvcc::PrefixSuccessor(prefix)
                                         : mvcc::EncodeRowKey(kTenant, index.id, r.end);
    Status s = QueryRange(index.id, lo, hi, read_ts, std::move(ranged), deadline, joined_answer);
    if (no_join) return fall_back();
    RETURN_IF_ERROR(s);
    if (stopped) break;
  }
  *joined = true;
  return Status::OK();
}

Status ClusterKv::QueryKeys(uint32_t id, const std::vector<std::string>& keys, uint64_t read_ts,
                            const v1::ShardQueryRequest& tmpl, Clock::time_point deadline,
                            const QueryAnswer& each) {
  constexpr size_t kPerCall = 1000;  // a node takes up to 1,024 keys per call
  const std::vector<std::string> rows = RowKeysOf(kTenant, id, keys);
  ASSIGN_OR_RETURN(auto groups, GroupByShard(rows, deadline));
  const auto calls = SplitGroups(groups, kPerCall);
  std::mutex mu;
  std::vector<std::string> moved;  // keys whose shard split since they were grouped
  RETURN_IF_ERROR(ParallelFor(calls.size(), kQueryFanOut, [&](size_t c) -> Status {
    const auto& idx = calls[c];
    std::vector<uint64_t> resolved;
    size_t done = 0;
    while (done < idx.size()) {
      v1::ShardQueryResponse resp;
      Status s = WithLocksResolved(read_ts, &resolved, deadline, [&] {
        return CallShard(rows[idx[done]], Target::kLeader, /*write=*/false, false, deadline,
                         [&](const sharding::ShardRecord& shard, const NodeConn& node,
                             Clock::time_point d) -> Status {
                           for (size_t j = done; j < idx.size(); ++j) {
                             if (!InRange(shard, rows[idx[j]])) return RowsMovedError();
                           }
                           v1::ShardQueryRequest q = tmpl;
                           SetRoute(shard, q.mutable_route());
                           q.set_tenant(kTenant);
                           q.set_collection(id);
                           q.set_read_ts(read_ts);
                           q.mutable_resolved()->Assign(resolved.begin(), resolved.end());
                           // An index join's entries by key, or documents.
                           auto* out = q.has_index_join()
                                           ? q.mutable_index_join()->mutable_entry_keys()
                                           : q.mutable_keys();
                           for (size_t j = done; j < idx.size(); ++j) *out->Add() = keys[idx[j]];
                           return node.client->Query(q, &resp, d);
                         });
      });
      if (IsRowsMoved(s)) {
        std::lock_guard lock(mu);
        for (size_t j = done; j < idx.size(); ++j) moved.push_back(keys[idx[j]]);
        return Status::OK();
      }
      RETURN_IF_ERROR(s);
      if (tmpl.has_index_join() && !resp.joined()) {
        // A node of a version without the join (it counted no keys): `each` decides.
        v1::ShardQueryRequest unused;
        return each(resp, &unused).status();
      }
      if (resp.keys_read() == 0 || resp.keys_read() > idx.size() - done) {
        return Status::Internal("a storage node read " + std::to_string(resp.keys_read()) + " of " +
                                std::to_string(idx.size() - done) + " keys");
      }
      done += resp.keys_read();
      v1::ShardQueryRequest unused;
      ASSIGN_OR_RETURN(bool more, each(resp, &unused));
      if (!more) return Status::OK();
    }
    return Status::OK();
  }));
  if (moved.empty()) return Status::OK();
  if (Expired(deadline)) return Status::Unavailable("shards kept splitting under a read");
  RefreshMap(deadline);
  return QueryKeys(id, moved, read_ts, tmpl, deadline, each);
}

}  // namespace gojodb::gateway
