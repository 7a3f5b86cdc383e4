// RouteTable: a client's cached view of the shard map, used by the gateway and the
// client library to send each request to the shard that holds its key.
//
// The table is filled from the controller's map (Reset, with its version) and corrected
// by what storage nodes answer: newer descriptors after a split or a membership change
// (Update, from EPOCH_NOT_MATCH), a leader hint (SetLeader, from NOT_LEADER), or a shard
// that is gone (Invalidate, from SHARD_NOT_FOUND). A descriptor only ever replaces
// descriptors it is newer than, so answers arriving out of order never move the table
// backwards. A key in no cached shard is NOT_FOUND: the caller refreshes from the
// controller and retries. See docs/architecture/storage-service.md.
//
// Thread-safety: all methods may be called concurrently.
#pragma once

#include <map>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "core/controller/state.h"
#include "internal/status.h"

namespace gojodb::sharding {

using controller::ShardRecord;

// Whether `a` is newer than `b` for the same shard id: a later split/merge version, or
// the same version and a later replica change.
bool NewerEpoch(const controller::Epoch& a, const controller::Epoch& b);

class RouteTable {
 public:
  // Replaces the table with the controller's map at `version`. A map older than the one
  // the table was last reset from is ignored (returns false).
  bool Reset(uint64_t version, std::vector<ShardRecord> shards);

  // Takes descriptors learnt from a storage node. Each replaces the cached descriptors
  // whose ranges it overlaps if it is newer than all of them (for the same shard: a
  // newer epoch; for other shards: a newer version, as after a split); otherwise it is
  // stale and ignored. Returns how many were taken.
  int Update(const std::vector<ShardRecord>& descriptors);

  // Records `leader` as the leader of shard `id` (no-op for an unknown shard).
  void SetLeader(uint64_t id, uint64_t leader);
  // Forgets shard `id`; its keys are NOT_FOUND until a refresh.
  void Invalidate(uint64_t id);

  // The shard holding `key`; NOT_FOUND when no cached shard does.
  Result<ShardRecord> Locate(std::string_view key) const;
  // The cached shards overlapping [start, end) in key order (an empty end: to the end of
  // the keyspace); FAILED_PRECONDITION if the cached shards leave a gap in that range,
  // so a scan never silently skips keys.
  Result<std::vector<ShardRecord>> Range(std::string_view start, std::string_view end) const;

  uint64_t version() const;
  size_t size() const;

 private:
  // REQUIRES: mu_ held exclusively.
  void EraseOverlapping(std::string_view start, std::string_view end);

  mutable std::shared_mutex mu_;
  uint64_t version_ = 0;                         // GUARDED_BY(mu_)
  std::map<std::string, ShardRecord> by_start_;  // GUARDED_BY(mu_): start key -> shard
};

}  // namespace gojodb::sharding
