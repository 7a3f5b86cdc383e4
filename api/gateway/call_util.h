// Small helpers shared by ClusterKv's source files (not a public interface).
#pragma once

#include <chrono>
#include <string_view>

#include "core/controller/state.h"
#include "gojodb/v1/shard.pb.h"

namespace gojodb::gateway {

inline std::chrono::system_clock::time_point ToSystem(std::chrono::steady_clock::time_point t) {
  return std::chrono::system_clock::now() +
         std::chrono::duration_cast<std::chrono::system_clock::duration>(
             t - std::chrono::steady_clock::now());
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
