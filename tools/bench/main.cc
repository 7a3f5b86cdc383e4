// gojodb-bench: YCSB core workloads against a GojoDB server over gRPC, against RocksDB
// in-process (--engine-direct) as the upper bound, or against an etcd cluster over its
// gRPC KV API (--target etcd) as a peer. See tools/bench/README.md.
//
// Exit status: 0 when every operation succeeded (read-modify-write conflicts are not
// failures), 1 when some failed, 2 on a usage error, 3 when the target could not be
// opened or the JSON file not written.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tools/bench/report.h"
#include "tools/bench/rocksdb_target.h"
#include "tools/bench/runner.h"
#include "tools/bench/server_target.h"
#ifdef GOJODB_BENCH_WITH_POSTGRES
#include "tools/bench/postgres_target.h"
#endif
#include "tools/bench/workload.h"

#ifdef GOJODB_BENCH_WITH_ETCD
#include "tools/bench/etcd_target.h"
#endif

namespace gojodb::bench {
namespace {

struct Flags {
  std::string addr;
  std::string target = "gojodb";  // what --addr points at
  std::string engine_direct;
  std::string workload = "a";
  std::string distribution;  // empty: the workload's own
  std::string collection = "default";
  std::string json_path;
  uint64_t records = 100000;
  uint64_t operations = 100000;
  int threads = 1;
  size_t value_size = 1000;
  bool load = false;
  bool sync = true;
  uint64_t seed = 1;
  double max_seconds = 0;
  uint64_t max_failures = 100;
  double progress_seconds = 10;
  int threads_per_client = 8;
  int timeout_ms = 10000;
};

int Main(int argc, char** argv) {
  Flags f;
  CLI::App app{
      "gojodb-bench: YCSB core workloads against GojoDB (--addr) or raw RocksDB "
      "(--engine-direct)"};
  auto* addr = app.add_option("--addr", f.addr,
                              "gRPC address (host:port) of a gojodb-standalone or gateway");
  auto* direct = app.add_option("--engine-direct", f.engine_direct,
                                "run in-process on RocksDB in this directory instead of a server");
  addr->excludes(direct);
  app.add_option("--target", f.target,
                 "what --addr names: gojodb (a standalone server or gateway), cluster (a GojoDB "
                 "cluster's controllers, host:port[,host:port...]: the client library routes "
                 "by the shard map straight to the storage nodes) or etcd (etcd v3 members, "
                 "host:port[,host:port...]; reads are linearizable Ranges, writes Puts) or "
                 "postgres (--addr is a libpq connection string)")
      ->check(CLI::IsMember({"gojodb", "cluster", "etcd", "postgres"}))
      ->capture_default_str();
  app.add_option("--workload", f.workload, "a|b|c|d|e|f|write|transfer|load")
      ->check(CLI::IsMember({"a", "b", "c", "d", "e", "f", "write", "transfer", "load"}))
      ->capture_default_str();
  app.add_option("--records", f.records, "records in the data set (keys 0..N-1)")
      ->capture_default_str();
  app.add_option("--ops", f.operations, "operations in the workload phase, over all threads")
      ->capture_default_str();
  app.add_option("--threads", f.threads, "client threads")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  app.add_option("--value-size", f.value_size, "bytes per value")
      ->check(CLI::Range(size_t{1}, size_t{8} << 20))
      ->capture_default_str();
  app.add_option("--distribution", f.distribution,
                 "key distribution: zipfian|uniform|latest (default: latest for d, else zipfian)")
      ->check(CLI::IsMember({"zipfian", "uniform", "latest"}));
  app.add_option("--collection", f.collection, "collection (server mode)")->capture_default_str();
  app.add_flag("--load", f.load, "run the load phase (insert --records keys) before the workload");
  app.add_option("--json", f.json_path, "also write the results to this JSON file");
  auto* sync = app.add_option("--sync", f.sync,
                              "engine-direct: WriteOptions.sync on every write (true|false)")
                   ->capture_default_str();
  app.add_option("--seed", f.seed, "seed of every random choice")->capture_default_str();
  app.add_option("--max-seconds", f.max_seconds,
                 "stop a phase after this many seconds (0: no limit)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--max-failures", f.max_failures, "stop a phase once more operations failed")
      ->capture_default_str();
  app.add_option("--progress", f.progress_seconds,
                 "progress line on stderr every N seconds (0: none)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--threads-per-client", f.threads_per_client,
                 "server mode: client threads sharing one gRPC client")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  app.add_option("--timeout-ms", f.timeout_ms, "server and etcd modes: per-request deadline")
      ->check(CLI::Range(1, 3600000))
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }

  if (f.addr.empty() == f.engine_direct.empty()) {
    std::cerr << "gojodb-bench: give exactly one of --addr HOST:PORT or --engine-direct DIR\n";
    return 2;
  }
  const bool etcd = f.target == "etcd";
  const bool cluster = f.target == "cluster";
  const bool postgres = f.target == "postgres";
  if ((etcd || cluster || postgres) && f.addr.empty()) {
    std::cerr << "gojodb-bench: --target " << f.target
              << " needs --addr HOST:PORT[,HOST:PORT...]\n";
    return 2;
  }
#ifndef GOJODB_BENCH_WITH_POSTGRES
  if (postgres) {
    std::cerr << "gojodb-bench: built without the postgres target (libpq was not found at "
                 "configure time; install libpq-dev and reconfigure)\n";
    return 2;
  }
#endif
#ifndef GOJODB_BENCH_WITH_ETCD
  if (etcd) {
    std::cerr << "gojodb-bench: built without the etcd target (etcd's .proto files were not "
                 "found at configure time; install golang-etcd-server-dev and reconfigure)\n";
    return 2;
  }
#endif
  auto spec = WorkloadByName(f.workload);
  if (!spec.ok()) {
    std::cerr << "gojodb-bench: " << spec.status().message() << "\n";
    return 2;
  }
  if (!f.distribution.empty()) spec->distribution = *ParseDistribution(f.distribution);
  if (f.records == 0) {
    std::cerr << "gojodb-bench: --records must be at least 1\n";
    return 2;
  }
  if (!f.addr.empty() && sync->count() > 0) {
    std::cerr << "gojodb-bench: note: --sync applies to --engine-direct only; the server "
                 "writes with its own durability setting\n";
  }

  std::vector<std::string> addrs;  // --addr split at commas
  for (size_t start = 0; start <= f.addr.size();) {
    size_t comma = f.addr.find(',', start);
    if (comma == std::string::npos) comma = f.addr.size();
    if (comma > start) addrs.push_back(f.addr.substr(start, comma - start));
    start = comma + 1;
  }
  std::unique_ptr<Target> target;
  if (postgres) {
#ifdef GOJODB_BENCH_WITH_POSTGRES
    target = std::make_unique<PostgresTarget>(PostgresTargetOptions{.conninfo = f.addr});
#endif
  } else if (etcd) {
#ifdef GOJODB_BENCH_WITH_ETCD
    target = std::make_unique<EtcdTarget>(
        EtcdTargetOptions{.endpoints = addrs, .timeout_ms = f.timeout_ms});
#endif
  } else if (!f.addr.empty()) {
    target = std::make_unique<ServerTarget>(ServerTargetOptions{
        .addr = cluster ? "" : f.addr,
        .controllers = cluster ? addrs : std::vector<std::string>{},
        .collection = f.collection,
        .threads = f.threads,
        .threads_per_client = f.threads_per_client,
        .timeout_ms = f.timeout_ms,
    });
  } else {
    target = std::make_unique<RocksDbTarget>(
        RocksDbTargetOptions{.path = f.engine_direct, .sync = f.sync});
  }
  if (Status s = target->Open(); !s.ok()) {
    std::cerr << "gojodb-bench: " << s.ToString() << "\n";
    return 3;
  }

  RunConfig config;
  config.spec = *spec;
  config.records = f.records;
  config.operations = f.operations;
  config.threads = f.threads;
  config.value_size = f.value_size;
  config.seed = f.seed;
  config.max_seconds = f.max_seconds;
  config.max_failures = f.max_failures;
  config.progress_seconds = f.progress_seconds;

  std::printf(
      "gojodb-bench: workload %s (%s), %s keys, %llu records, %llu operations, "
      "%d threads, %zu-byte values, seed %llu\n",
      spec->name.c_str(), spec->description.c_str(),
      std::string(DistributionName(spec->distribution)).c_str(),
      static_cast<unsigned long long>(f.records), static_cast<unsigned long long>(f.operations),
      f.threads, f.value_size, static_cast<unsigned long long>(f.seed));
  std::printf("target: %s\n\n", target->Describe().c_str());
  std::fflush(stdout);

  std::vector<PhaseResult> phases;
  if (f.load || spec->load_only()) {
    phases.push_back(RunLoad(*target, config));
    std::printf("%s\n", FormatPhase(phases.back()).c_str());
    std::fflush(stdout);
  }
  const bool load_failed = !phases.empty() && phases.back().failures() > 0;
  if (!spec->load_only() && !load_failed) {
    phases.push_back(RunWorkload(*target, config));
    std::printf("%s\n", FormatPhase(phases.back()).c_str());
  }

  uint64_t failures = 0;
  std::string first_error;
  for (const auto& p : phases) {
    failures += p.failures();
    if (first_error.empty()) first_error = p.first_error;
  }

  int rc = failures > 0 ? 1 : 0;
  if (!f.json_path.empty()) {
    nlohmann::json cfg = {
        {"mode",
         f.addr.empty()
             ? "engine-direct"
             : (etcd ? "etcd" : (cluster ? "cluster" : (postgres ? "postgres" : "server")))},
        {"target", target->Describe()},
        {"workload", spec->name},
        {"description", spec->description},
        {"distribution", DistributionName(spec->distribution)},
        {"records", f.records},
        {"operations", f.operations},
        {"threads", f.threads},
        {"value_size", f.value_size},
        {"load", f.load || spec->load_only()},
        {"seed", f.seed},
    };
    if (f.addr.empty()) {
      cfg["path"] = f.engine_direct;
      cfg["sync"] = f.sync;
    } else {
      cfg["addr"] = f.addr;
      if (!etcd) cfg["collection"] = f.collection;
    }
    nlohmann::json doc = {{"config", cfg}, {"phases", nlohmann::json::array()}};
    for (const auto& p : phases) doc["phases"].push_back(PhaseJson(p));
    doc["failures"] = failures;
    doc["first_error"] =
        first_error.empty() ? nlohmann::json(nullptr) : nlohmann::json(first_error);
    std::ofstream out(f.json_path);
    out << doc.dump(2) << "\n";
    out.close();
    if (!out) {
      std::cerr << "gojodb-bench: cannot write " << f.json_path << "\n";
      rc = 3;
    }
  }
  if (failures > 0) {
    std::cerr << "gojodb-bench: " << failures << " operations failed; first: " << first_error
              << "\n";
  }
  return rc;
}

}  // namespace
}  // namespace gojodb::bench

int main(int argc, char** argv) { return gojodb::bench::Main(argc, argv); }
