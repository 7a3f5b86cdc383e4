// tools/bench: runs a load phase or a workload phase with N client threads and
// collects per-operation counts and latency histograms.
//
// Each thread has its own Connection, its own operation stream (seeded from --seed and
// the thread number) and its own statistics, recorded without locks; they are merged
// when the phase ends. Latency is measured per operation with a steady clock, in
// nanoseconds, for every attempt whatever its outcome.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "tools/bench/histogram.h"
#include "tools/bench/target.h"
#include "tools/bench/workload.h"

namespace gojodb::bench {

struct RunConfig {
  WorkloadSpec spec;
  uint64_t records = 0;     // records 0..records-1 (inserted by the load phase)
  uint64_t operations = 0;  // operations of the workload phase, over all threads
  int threads = 1;
  size_t value_size = 1000;  // bytes per written value
  uint64_t seed = 1;
  double max_seconds = 0;        // a phase stops after this long; 0: no bound
  uint64_t max_failures = 100;   // a phase stops once more operations than this failed
  double progress_seconds = 10;  // progress line on stderr this often; 0: none
};

struct OpStats {
  uint64_t ok = 0;
  uint64_t not_found = 0;    // a failure: the key should exist
  uint64_t conflicts = 0;    // expected under contention (read-modify-write)
  uint64_t errors = 0;       // a failure
  LatencyHistogram latency;  // nanoseconds

  uint64_t count() const { return ok + not_found + conflicts + errors; }
  uint64_t failures() const { return not_found + errors; }
  void Merge(const OpStats& other);
};

struct PhaseResult {
  std::string phase;  // "load" or "run"
  double seconds = 0;
  // CPU time (user + system) of this whole process during the phase: the client's cost
  // in server mode; client and storage engine, background threads included, in
  // engine-direct mode.
  double cpu_seconds = 0;
  std::array<OpStats, kNumOpTypes> ops;
  std::string stop_reason;  // non-empty when the phase ended before its last operation
  std::string first_error;  // the first failure seen, for the report

  OpStats Overall() const;
  uint64_t failures() const;
};

// Inserts records 0..records-1, shared out among the threads.
PhaseResult RunLoad(Target& target, const RunConfig& config);

// Runs config.operations operations of config.spec against records 0..records-1.
PhaseResult RunWorkload(Target& target, const RunConfig& config);

}  // namespace gojodb::bench
