// The cluster's GC safe point, as the controller's leader works it out
// (docs/architecture/transactions.md, "Garbage collection"). Pure functions: the
// Controller feeds them its clock, the holds of routers with open transactions and the
// storage nodes' reports.
//
//   target      min(now - gc_ttl, the oldest start_ts a live hold names). Shards raise
//               their GC fence to it: prewrites and reads below it are refused from then.
//   resolved    a shard's leader reports its fence once the shard holds no lock below it.
//   safe point  the least resolved fence, once every shard of a map that tiles the
//               keyspace has reported one at its current epoch: below it no lock remains
//               anywhere and none can be written, so versions below it (but the newest of
//               each row) may go. It never moves back.
//   reclaim     a dropped id's rows may all go once the safe point reaches its entry's
//               lease end (state.h, ReclaimEntry); the leaders of the shards its range
//               meets delete them and report it, and once the reports cover the range at
//               the shards' current epochs the entry is removed.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "core/controller/state.h"

namespace gojodb::controller {

// A router's promise that its transactions from min_start_ts on are alive.
struct GcHold {
  uint64_t min_start_ts = 0;
  uint64_t expires_ms = 0;
};

// A storage node's report that `shard`, at epoch `version`, is resolved below `fence`.
struct GcResolvedReport {
  uint64_t shard = 0;
  uint64_t version = 0;
  uint64_t fence = 0;
};

// A storage node's report that `shard`, at epoch `version`, deleted the rows of
// dropped id `id`.
struct ReclaimedReport {
  uint64_t shard = 0;
  uint64_t version = 0;
  uint32_t id = 0;
  auto operator<=>(const ReclaimedReport&) const = default;
};

// What heartbeat answers tell storage nodes.
struct GcPoints {
  uint64_t target = 0;
  uint64_t safe_point = 0;
  std::vector<ReclaimEntry> reclaim;  // the entries whose rows may go now
  uint64_t reclaim_pending = 0;       // entries not done yet (ready or not)
};

// min(now - gc_ttl, every unexpired hold's min_start_ts), as a timestamp; 0 while
// now <= gc_ttl.
uint64_t GcTarget(uint64_t now_ms, uint64_t gc_ttl_ms, const std::map<std::string, GcHold>& holds);

// The target after `current` given a new candidate: it moves in steps of a tenth of
// the TTL (each move costs every shard a Raft command), never back.
uint64_t NextGcTarget(uint64_t current, uint64_t candidate, uint64_t gc_ttl_ms);

// The least fence reported for `shards`, or 0 unless the shards tile the keyspace from
// "" to the end and each has a report at its current epoch version.
uint64_t GcSafePointFromReports(const std::map<uint64_t, ShardRecord>& shards,
                                const std::map<uint64_t, GcResolvedReport>& resolved);

// The row-key range of a collection's or index's rows: [CollectionPrefix, its successor).
std::pair<std::string, std::string> ReclaimRange(const ReclaimEntry& e);

// The entries of `reclaim` that may be handed out: lease end at or below the safe point.
std::vector<ReclaimEntry> ReadyToReclaim(const std::map<uint32_t, ReclaimEntry>& reclaim,
                                         uint64_t safe_point);

// The ids of `reclaim` whose range is covered, with no gap, by shards of the map that
// each reported the id at their current epoch version.
std::vector<uint32_t> ReclaimedIds(const std::map<uint64_t, ShardRecord>& shards,
                                   const std::map<uint32_t, ReclaimEntry>& reclaim,
                                   const std::set<ReclaimedReport>& reports);

}  // namespace gojodb::controller
