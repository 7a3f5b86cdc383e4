// A deterministic simulation of one Raft group: 3-5 voters (plus spare nodes for
// membership changes) over a simulated network that drops, duplicates, reorders,
// delays and partitions messages (asymmetric cuts too), with crashes that lose
// unsynced state, restarts, membership changes, leadership transfers, log
// compaction, proposals and reads. Everything derives from one seed, so a seed
// replays exactly.
#pragma once

#include <cstdint>
#include <string>

namespace gojodb::sim {

struct SimOptions {
  // Ticks of chaos before the final heal and liveness check.
  uint64_t steps = 500;
  // Ticks allowed, after the network heals, for a leader to commit a new entry.
  uint64_t liveness_ticks = 1000;
  bool verbose = false;
};

struct SimResult {
  bool ok = true;
  std::string failure;  // what broke, and at which tick
  uint64_t ticks = 0;
  uint64_t applied = 0;
  uint64_t leaders = 0;
  uint64_t crashes = 0;
  uint64_t conf_changes = 0;
  uint64_t snapshots_sent = 0;
  uint64_t reads = 0;
  std::string params;  // the randomly chosen parameters of this seed
};

SimResult RunSimulation(uint64_t seed, const SimOptions& options);

}  // namespace gojodb::sim
