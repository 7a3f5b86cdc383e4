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
#pragma once

#include <cstdint>
#include <map>
#include <string>

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

// What heartbeat answers tell storage nodes.
struct GcPoints {
  uint64_t target = 0;
  uint64_t safe_point = 0;
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

}  // namespace gojodb::controller
