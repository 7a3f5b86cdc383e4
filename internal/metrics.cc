#include "internal/metrics.h"

#include <cstdio>
#include <sstream>

namespace gojodb {

void Metrics::RecordRequest(const std::string& api, const std::string& op, const std::string& code,
                            double seconds) {
  Histogram* h;
  std::atomic<uint64_t>* counter;
  {
    std::lock_guard lock(mu_);
    auto& hp = latency_[{api, op}];
    if (!hp) hp = std::make_unique<Histogram>();
    h = hp.get();
    auto& cp = requests_["api=\"" + api + "\",op=\"" + op + "\",code=\"" + code + "\""];
    if (!cp) cp = std::make_unique<std::atomic<uint64_t>>(0);
    counter = cp.get();
  }
  counter->fetch_add(1, std::memory_order_relaxed);
  for (size_t i = 0; i < kBuckets.size(); ++i) {
    if (seconds <= kBuckets[i]) h->buckets[i].fetch_add(1, std::memory_order_relaxed);
  }
  h->count.fetch_add(1, std::memory_order_relaxed);
  h->sum_ns.fetch_add(static_cast<uint64_t>(seconds * 1e9), std::memory_order_relaxed);
}

void Metrics::AddGaugeSource(std::string prefix, GaugeSource source) {
  std::lock_guard lock(mu_);
  gauges_[std::move(prefix)] = std::move(source);
}

std::string Metrics::Render() {
  std::ostringstream out;
  std::map<std::string, GaugeSource> gauges;
  {
    std::lock_guard lock(mu_);
    out << "# HELP gojodb_requests_total Requests served, by API, operation and status code.\n"
        << "# TYPE gojodb_requests_total counter\n";
    for (const auto& [labels, c] : requests_) {
      out << "gojodb_requests_total{" << labels << "} " << c->load() << "\n";
    }
    out << "# HELP gojodb_request_duration_seconds Request latency.\n"
        << "# TYPE gojodb_request_duration_seconds histogram\n";
    for (const auto& [key, h] : latency_) {
      const std::string labels = "api=\"" + key.first + "\",op=\"" + key.second + "\"";
      for (size_t i = 0; i < kBuckets.size(); ++i) {
        char le[32];
        std::snprintf(le, sizeof le, "%g", kBuckets[i]);
        out << "gojodb_request_duration_seconds_bucket{" << labels << ",le=\"" << le << "\"} "
            << h->buckets[i].load() << "\n";
      }
      out << "gojodb_request_duration_seconds_bucket{" << labels << ",le=\"+Inf\"} "
          << h->count.load() << "\n";
      out << "gojodb_request_duration_seconds_sum{" << labels << "} "
          << static_cast<double>(h->sum_ns.load()) / 1e9 << "\n";
      out << "gojodb_request_duration_seconds_count{" << labels << "} " << h->count.load() << "\n";
    }
    gauges = gauges_;
  }
  for (const auto& [prefix, source] : gauges) {
    for (const auto& [name, value] : source()) {
      const std::string metric = "gojodb_" + prefix + "_" + name;
      out << "# TYPE " << metric << " gauge\n" << metric << " " << value << "\n";
    }
  }
  return out.str();
}

}  // namespace gojodb
