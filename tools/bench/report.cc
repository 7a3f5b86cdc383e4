#include "tools/bench/report.h"

#include <cstdio>

namespace gojodb::bench {
namespace {

double Us(uint64_t ns) { return static_cast<double>(ns) / 1000.0; }

std::string Row(const char* name, const OpStats& s, double seconds) {
  const auto& h = s.latency;
  char buf[512];
  std::snprintf(buf, sizeof(buf),
                "%-18s %10llu %10llu %9llu %9llu %8llu %11.1f %9.1f %9.1f %9.1f %9.1f %9.1f "
                "%10.1f\n",
                name, static_cast<unsigned long long>(s.count()),
                static_cast<unsigned long long>(s.ok), static_cast<unsigned long long>(s.not_found),
                static_cast<unsigned long long>(s.conflicts),
                static_cast<unsigned long long>(s.errors),
                seconds > 0 ? static_cast<double>(s.count()) / seconds : 0.0, h.mean() / 1000.0,
                Us(h.ValueAtQuantile(0.50)), Us(h.ValueAtQuantile(0.95)),
                Us(h.ValueAtQuantile(0.99)), Us(h.ValueAtQuantile(0.999)), Us(h.max()));
  return buf;
}

nlohmann::json StatsJson(const OpStats& s, double seconds) {
  const auto& h = s.latency;
  return {
      {"count", s.count()},
      {"ok", s.ok},
      {"not_found", s.not_found},
      {"conflicts", s.conflicts},
      {"errors", s.errors},
      {"throughput_ops_per_sec", seconds > 0 ? static_cast<double>(s.count()) / seconds : 0.0},
      {"latency_us",
       {{"min", Us(h.min())},
        {"mean", h.mean() / 1000.0},
        {"p50", Us(h.ValueAtQuantile(0.50))},
        {"p95", Us(h.ValueAtQuantile(0.95))},
        {"p99", Us(h.ValueAtQuantile(0.99))},
        {"p999", Us(h.ValueAtQuantile(0.999))},
        {"max", Us(h.max())}}},
  };
}

}  // namespace

std::string FormatPhase(const PhaseResult& phase) {
  const OpStats all = phase.Overall();
  char head[256];
  std::snprintf(head, sizeof(head),
                "[%s] %llu operations in %.2f s: %.1f ops/s; process CPU %.2f s (%.1f us/op)\n",
                phase.phase.c_str(), static_cast<unsigned long long>(all.count()), phase.seconds,
                phase.seconds > 0 ? static_cast<double>(all.count()) / phase.seconds : 0.0,
                phase.cpu_seconds,
                all.count() ? phase.cpu_seconds * 1e6 / static_cast<double>(all.count()) : 0.0);
  std::string out = head;
  char cols[512];
  std::snprintf(cols, sizeof(cols), "%-18s %10s %10s %9s %9s %8s %11s %9s %9s %9s %9s %9s %10s\n",
                "operation", "count", "ok", "not_found", "conflicts", "errors", "ops/s", "mean_us",
                "p50_us", "p95_us", "p99_us", "p99.9_us", "max_us");
  out += cols;
  for (int i = 0; i < kNumOpTypes; ++i) {
    if (phase.ops[i].count() == 0) continue;
    out +=
        Row(std::string(OpTypeName(static_cast<OpType>(i))).c_str(), phase.ops[i], phase.seconds);
  }
  out += Row("TOTAL", all, phase.seconds);
  if (!phase.stop_reason.empty()) out += "stopped early: " + phase.stop_reason + "\n";
  if (!phase.first_error.empty()) out += "first failure: " + phase.first_error + "\n";
  return out;
}

nlohmann::json PhaseJson(const PhaseResult& phase) {
  nlohmann::json ops = nlohmann::json::object();
  for (int i = 0; i < kNumOpTypes; ++i) {
    if (phase.ops[i].count() == 0) continue;
    ops[std::string(OpTypeName(static_cast<OpType>(i)))] = StatsJson(phase.ops[i], phase.seconds);
  }
  nlohmann::json j = {
      {"phase", phase.phase},
      {"seconds", phase.seconds},
      {"process_cpu_seconds", phase.cpu_seconds},
      {"operations", ops},
      {"total", StatsJson(phase.Overall(), phase.seconds)},
  };
  j["stop_reason"] =
      phase.stop_reason.empty() ? nlohmann::json(nullptr) : nlohmann::json(phase.stop_reason);
  j["first_error"] =
      phase.first_error.empty() ? nlohmann::json(nullptr) : nlohmann::json(phase.first_error);
  return j;
}

}  // namespace gojodb::bench
