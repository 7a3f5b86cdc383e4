// A small Prometheus metrics registry: request counters and latency histograms per
// (api, op) and counters per (api, op, code). Thread-safe; recording is a few atomic
// adds after the first lookup of a series.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace gojodb {

class Metrics {
 public:
  // Latency bucket upper bounds in seconds.
  static constexpr std::array<double, 14> kBuckets = {
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5};

  // Records one finished request.
  void RecordRequest(const std::string& api, const std::string& op, const std::string& code,
                     double seconds);

  // A gauge source read at scrape time (e.g. engine statistics): name -> value.
  using GaugeSource = std::function<std::map<std::string, uint64_t>()>;
  void AddGaugeSource(std::string prefix, GaugeSource source);

  // The Prometheus text exposition format (version 0.0.4).
  std::string Render();

 private:
  struct Histogram {
    std::array<std::atomic<uint64_t>, kBuckets.size()> buckets{};
    std::atomic<uint64_t> count{0};
    std::atomic<uint64_t> sum_ns{0};
  };
  std::mutex mu_;
  std::map<std::pair<std::string, std::string>, std::unique_ptr<Histogram>> latency_;  // (api, op)
  std::map<std::string, std::unique_ptr<std::atomic<uint64_t>>> requests_;  // rendered labels
  std::map<std::string, GaugeSource> gauges_;
};

}  // namespace gojodb
