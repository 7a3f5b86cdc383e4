// gojodb-tso-bench: timestamp allocation against a controller group over gRPC.
//
//   gojodb-tso-bench --addr HOST:PORT[,HOST:PORT...] --threads N --batch B --seconds S
//
// Each thread calls Controller.GetTimestamps(count = B) in a loop on its own channel
// (threads spread over the addresses; a follower forwards to the leader) and checks that
// the answers it sees increase. Reports requests/s, timestamps/s and latency
// percentiles, as text and (with --json) as one JSON object.
#include <grpcpp/grpcpp.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <thread>

#include "gojodb/v1/controller.grpc.pb.h"
#include "tools/bench/histogram.h"

int main(int argc, char** argv) {
  CLI::App app{"gojodb-tso-bench: timestamp allocation throughput and latency"};
  std::string addrs;
  int threads = 8;
  uint32_t batch = 1;
  double seconds = 10;
  bool as_json = false;
  app.add_option("--addr", addrs, "controller gRPC address(es), comma-separated")->required();
  app.add_option("--threads", threads, "concurrent clients")->check(CLI::Range(1, 1024));
  app.add_option("--batch", batch, "timestamps per request")->check(CLI::Range(1, 65536));
  app.add_option("--seconds", seconds, "duration")->check(CLI::Range(0.1, 3600.0));
  app.add_flag("--json", as_json, "print the result as JSON");
  CLI11_PARSE(app, argc, argv);

  std::vector<std::string> targets;
  for (size_t pos = 0; pos <= addrs.size();) {
    size_t end = addrs.find(',', pos);
    if (end == std::string::npos) end = addrs.size();
    if (end > pos) targets.push_back(addrs.substr(pos, end - pos));
    pos = end + 1;
  }
  if (targets.empty()) {
    std::fprintf(stderr, "gojodb-tso-bench: --addr is empty\n");
    return 2;
  }

  std::atomic<uint64_t> errors{0}, regressions{0};
  std::vector<gojodb::bench::LatencyHistogram> hist(threads);
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::microseconds(static_cast<int64_t>(seconds * 1e6));
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      grpc::ChannelArguments args;
      args.SetInt("gojodb-bench-channel", t);  // one connection per thread
      auto stub = gojodb::v1::Controller::NewStub(grpc::CreateCustomChannel(
          targets[t % targets.size()], grpc::InsecureChannelCredentials(), args));
      gojodb::v1::GetTimestampsRequest req;
      req.set_count(batch);
      uint64_t last = 0;
      while (std::chrono::steady_clock::now() < deadline) {
        gojodb::v1::GetTimestampsResponse resp;
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
        const auto t0 = std::chrono::steady_clock::now();
        grpc::Status s = stub->GetTimestamps(&ctx, req, &resp);
        const auto t1 = std::chrono::steady_clock::now();
        if (!s.ok()) {
          ++errors;
          continue;
        }
        if (resp.first() <= last) ++regressions;
        last = resp.first() + resp.count() - 1;
        hist[t].Record(static_cast<uint64_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count()));
      }
    });
  }
  for (auto& w : workers) w.join();
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  gojodb::bench::LatencyHistogram all;
  for (const auto& h : hist) all.Merge(h);
  const double rps = static_cast<double>(all.count()) / elapsed;
  auto us = [&](double q) { return static_cast<double>(all.ValueAtQuantile(q)) / 1000.0; };
  if (as_json) {
    nlohmann::json j = {{"threads", threads},
                        {"batch", batch},
                        {"seconds", elapsed},
                        {"requests", all.count()},
                        {"requests_per_s", rps},
                        {"timestamps_per_s", rps * batch},
                        {"p50_us", us(0.5)},
                        {"p99_us", us(0.99)},
                        {"p999_us", us(0.999)},
                        {"errors", errors.load()},
                        {"regressions", regressions.load()}};
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf(
        "gojodb-tso-bench: %d threads, batch %u, %.1f s: %llu requests, %.0f req/s, %.0f "
        "timestamps/s, p50 %.0f us, p99 %.0f us, p99.9 %.0f us, %llu errors, %llu "
        "regressions\n",
        threads, batch, elapsed, static_cast<unsigned long long>(all.count()), rps, rps * batch,
        us(0.5), us(0.99), us(0.999), static_cast<unsigned long long>(errors.load()),
        static_cast<unsigned long long>(regressions.load()));
  }
  return regressions.load() == 0 ? 0 : 1;
}
