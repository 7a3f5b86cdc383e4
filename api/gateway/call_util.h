// Small helpers shared by ClusterKv's source files (not a public interface).
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "core/controller/state.h"
#include "core/mvcc/key_codec.h"
#include "gojodb/v1/shard.pb.h"
#include "internal/status.h"

namespace gojodb::gateway {

// What a call for several rows answers, unsent, when they no longer fall in the one
// shard it was routed to (a split since they were grouped): group them again.
inline Status RowsMovedError() {
  return Status::FailedPrecondition("the rows no longer share a shard")
      .WithDetail("reason", "ROWS_MOVED");
}
inline bool IsRowsMoved(const Status& s) {
  if (s.code() != StatusCode::kFailedPrecondition) return false;
  for (const auto& [k, v] : s.details()) {
    if (k == "reason" && v == "ROWS_MOVED") return true;
  }
  return false;
}

// Runs fn(i) for i in [0, n) on up to `threads` threads (this one among them); the
// first error wins and stops the others at their next item.
inline Status ParallelFor(size_t n, size_t threads, const std::function<Status(size_t)>& fn) {
  std::atomic<size_t> next{0};
  std::mutex mu;
  Status first;
  auto work = [&] {
    for (size_t i = next++; i < n; i = next++) {
      Status s = fn(i);
      if (s.ok()) continue;
      std::lock_guard lock(mu);
      if (first.ok()) first = std::move(s);
      next = n;
    }
  };
  threads = std::min(n, threads);
  std::vector<std::thread> pool;
  for (size_t t = 1; t < threads; ++t) pool.emplace_back(work);
  if (n > 0) work();
  for (auto& t : pool) t.join();
  return first;
}

// The row keys of a collection's user keys, in the same order.
inline std::vector<std::string> RowKeysOf(uint32_t tenant, uint32_t collection,
                                          const std::vector<std::string>& keys) {
  std::vector<std::string> rows;
  rows.reserve(keys.size());
  for (const auto& k : keys) rows.push_back(mvcc::EncodeRowKey(tenant, collection, k));
  return rows;
}

// The groups (of indexes, one per shard) cut into calls of at most `per_call` each.
inline std::vector<std::vector<size_t>> SplitGroups(const std::vector<std::vector<size_t>>& groups,
                                                    size_t per_call) {
  std::vector<std::vector<size_t>> calls;
  for (const auto& g : groups) {
    for (size_t i = 0; i < g.size(); i += per_call) {
      calls.emplace_back(g.begin() + i, g.begin() + std::min(g.size(), i + per_call));
    }
  }
  return calls;
}

inline std::chrono::system_clock::time_point ToSystem(std::chrono::steady_clock::time_point t) {
  return std::chrono::system_clock::now() +
         std::chrono::duration_cast<std::chrono::system_clock::duration>(
             t - std::chrono::steady_clock::now());
}

// The user-key range [start, end) a scan covers: its bounds narrowed by its prefix
// (empty end: unbounded).
inline std::pair<std::string, std::string> ScanRange(const std::string& start,
                                                     const std::string& end,
                                                     const std::string& prefix) {
  std::string lo = start, hi = end;
  if (!prefix.empty()) {
    lo = std::max(lo, prefix);
    std::string succ = mvcc::PrefixSuccessor(prefix);
    if (!succ.empty() && (hi.empty() || succ < hi)) hi = succ;
  }
  return {lo, hi};
}

inline bool InRange(const controller::ShardRecord& s, std::string_view row_key) {
  return row_key >= s.start_key && (s.end_key.empty() || row_key < s.end_key);
}

inline void SetRoute(const controller::ShardRecord& s, v1::ShardRoute* r) {
  r->set_shard(s.id);
  r->set_conf_ver(s.epoch.conf_ver);
  r->set_version(s.epoch.version);
}

}  // namespace gojodb::gateway
