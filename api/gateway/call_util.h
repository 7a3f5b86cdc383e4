// Small helpers shared by ClusterKv's source files (not a public interface).
#pragma once

#include <algorithm>
#include <chrono>
#include <string>
#include <string_view>
#include <utility>

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
