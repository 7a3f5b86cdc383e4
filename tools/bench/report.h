// tools/bench: the results of a phase as a text table and as JSON.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "tools/bench/runner.h"

namespace gojodb::bench {

// A header line and one row per operation type that ran, then TOTAL: counts,
// throughput and latency percentiles in microseconds.
std::string FormatPhase(const PhaseResult& phase);

// {"phase", "seconds", "process_cpu_seconds", "operations": {"READ": {...}, ...}, "total": {...},
//  "stop_reason", "first_error"}; each entry has count, ok, not_found, conflicts,
// errors, throughput_ops_per_sec and latency_us {min, mean, p50, p95, p99, p999, max}.
nlohmann::json PhaseJson(const PhaseResult& phase);

}  // namespace gojodb::bench
