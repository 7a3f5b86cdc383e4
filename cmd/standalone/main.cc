// gojodb-standalone: one process, one data directory, the whole database.
// See docs/operations/standalone.md. Exit status: 0 after a clean shutdown, 1 when the
// server cannot start (bad data directory, port in use), 2 on bad flags or config.
#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "api/grpc/convert.h"
#include "api/grpc/grpc_services.h"
#include "api/http/http_server.h"
#include "cmd/common/config.h"
#include "cmd/common/data_dir.h"
#include "cmd/common/server_main.h"
#include "core/kv/kv_store.h"
#include "core/mvcc/mvcc.h"
#include "core/mvcc/timestamp_oracle.h"
#include "internal/version.h"

namespace gojodb {
namespace {

std::vector<server::Setting> StandaloneSettings() {
  return {
      {"data_dir", "", "data directory (created if missing)", true},
      {"http_addr", "", "HTTP listen address host:port", true},
      {"grpc_addr", "", "gRPC listen address host:port", true},
      {"storage.engine", "rocksdb", "storage engine: rocksdb or memory", false},
      {"storage.sync_writes", "true", "acknowledge writes only once fsynced", false},
      {"storage.block_cache_mb", "256", "RocksDB block cache size", false},
      {"limits.max_key_bytes", "4096", "largest key accepted", false},
      {"limits.max_value_bytes", "8388608", "largest value accepted", false},
      {"gc.ttl_seconds", "600", "how long old versions stay readable", false},
      {"request_id_ttl_seconds", "3600", "how long a request id makes retries apply once", false},
      {"http.threads", "64", "HTTP worker threads", false},
      {"http.max_body_mb", "64", "largest HTTP request body", false},
      {"log.level", "info", "log level: debug, info, warn, error", false},
  };
}

int Fail(int code, const Status& s) { return server::Fail("gojodb-standalone", code, s); }

std::string ClusterStatusJson(const std::string& grpc_addr, const std::string& http_addr) {
  nlohmann::json node = {{"id", 1}, {"address", grpc_addr}, {"http_address", http_addr}};
  nlohmann::json ctrl = node;
  ctrl["role"] = "leader";
  nlohmann::json storage = node;
  storage["state"] = "up";
  nlohmann::json j = {
      {"mode", "standalone"},
      {"version", kVersion},
      {"controllers", {ctrl}},
      {"leader", 1},
      {"storage_nodes", {storage}},
      {"shards", {{{"id", 1}, {"range", {"", ""}}, {"replicas", {1}}, {"leader", 1}}}},
  };
  return j.dump() + "\n";
}

v1::ClusterStatusResponse ClusterStatusProto(const std::string& grpc_addr,
                                             const std::string& http_addr) {
  v1::ClusterStatusResponse r;
  r.set_mode("standalone");
  r.set_version(kVersion);
  auto* c = r.add_controllers();
  c->set_id(1);
  c->set_role("leader");
  c->set_grpc_addr(grpc_addr);
  c->set_http_addr(http_addr);
  c->set_state("up");
  r.set_leader(1);
  auto* s = r.add_storage_nodes();
  *s = *c;
  s->set_role("storage");
  auto* shard = r.add_shards();
  shard->set_id(1);
  shard->add_replicas(1);
  shard->set_leader(1);
  return r;
}

int Run(int argc, char** argv) {
  CLI::App app{"GojoDB standalone server: controller, storage and API in one process"};
  server::Config config(StandaloneSettings());
  if (auto stop = server::ParseCommandLine(&app, &config, argc, argv, "gojodb-standalone"))
    return *stop;

  // Typed settings, checked before anything starts.
  auto sync = config.GetBool("storage.sync_writes");
  auto cache_mb = config.GetUint("storage.block_cache_mb");
  auto max_key = config.GetUint("limits.max_key_bytes");
  auto max_value = config.GetUint("limits.max_value_bytes");
  auto gc_ttl = config.GetUint("gc.ttl_seconds");
  auto rid_ttl = config.GetUint("request_id_ttl_seconds");
  auto http_threads = config.GetUint("http.threads");
  auto body_mb = config.GetUint("http.max_body_mb");
  for (const Status* s :
       {&sync.status(), &cache_mb.status(), &max_key.status(), &max_value.status(),
        &gc_ttl.status(), &rid_ttl.status(), &http_threads.status(), &body_mb.status()}) {
    if (!s->ok()) return Fail(2, *s);
  }
  if (*max_key == 0 || *max_key > 4096) {
    return Fail(2, Status::InvalidArgument("--limits-max-key-bytes must be 1..4096"));
  }
  for (const char* key : {"http_addr", "grpc_addr"}) {
    if (auto hp = http::SplitHostPort(config.Get(key)); !hp.ok()) {
      return Fail(2, hp.status().WithContext(server::Config::FlagName(key)));
    }
  }

  // Before any thread starts: main is the one that receives them.
  server::ShutdownSignals signals;

  const std::string data_dir = config.Get("data_dir");
  auto lock = server::DataDirLock::Acquire(data_dir);
  if (!lock.ok()) return Fail(1, lock.status());

  auto safe_point = std::make_shared<mvcc::SafePoint>();
  storage::EngineOptions eo;
  eo.kind = config.Get("storage.engine");
  eo.path = data_dir + "/db";
  eo.block_cache_bytes = *cache_mb << 20;
  eo.filters[mvcc::kVersionCf] = mvcc::NewVersionGcFilterFactory(safe_point);
  auto engine = storage::OpenEngine(eo);
  if (!engine.ok()) return Fail(1, engine.status().WithContext("storage"));
  auto tso = mvcc::LocalTimestampOracle::Open(engine->get(), SystemClock::Default());
  if (!tso.ok()) return Fail(1, tso.status());

  kv::KvStoreOptions ko;
  ko.sync_writes = *sync;
  ko.limits.max_key_bytes = *max_key;
  ko.limits.max_value_bytes = *max_value;
  ko.gc_ttl_ms = *gc_ttl * 1000;
  ko.request_id_ttl_ms = *rid_ttl * 1000;
  auto store = kv::KvStore::Open(engine->get(), tso->get(), SystemClock::Default(), safe_point, ko);
  if (!store.ok()) return Fail(1, store.status());

  Metrics metrics;
  metrics.AddGaugeSource("storage", [s = store->get()] { return s->StorageStats(); });

  const std::string grpc_addr = config.Get("grpc_addr");
  const std::string http_addr = config.Get("http_addr");
  rpc::TuneGrpcRuntime();
  rpc::GrpcServices services(store->get(), &metrics,
                             [=] { return ClusterStatusProto(grpc_addr, http_addr); });
  grpc::ServerBuilder builder;
  int bound_port = 0;
  builder.AddListeningPort(grpc_addr, grpc::InsecureServerCredentials(), &bound_port);
  builder.SetMaxReceiveMessageSize(static_cast<int>((*body_mb) << 20));
  builder.SetMaxSendMessageSize(static_cast<int>((*body_mb) << 20));
  services.RegisterOn(&builder);
  std::unique_ptr<grpc::Server> grpc_server = builder.BuildAndStart();
  if (!grpc_server || bound_port == 0) {
    return Fail(1, Status::Unavailable("cannot listen on " + grpc_addr + " (gRPC)"));
  }

  http::HttpApi api(store->get(), &metrics,
                    [=] { return ClusterStatusJson(grpc_addr, http_addr); });
  http::HttpServer http_server(
      &api, {.max_body_bytes = (*body_mb) << 20, .threads = static_cast<int>(*http_threads)});
  if (Status s = http_server.Start(http_addr); !s.ok()) {
    grpc_server->Shutdown();
    return Fail(1, s);
  }
  spdlog::info("gojodb-standalone {} serving data_dir={} engine={} sync_writes={} http={} grpc={}",
               kVersion, data_dir, eo.kind, *sync, http_addr, grpc_addr);

  signals.Wait();
  http_server.Stop();
  spdlog::info("http listener stopped");
  // In-flight calls get a second to finish; idle client connections do not hold us up.
  grpc_server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  services.Drain();
  spdlog::info("grpc server stopped");
  store->reset();
  if (Status s = (*engine)->SyncWal(); !s.ok())
    spdlog::error("final WAL sync failed: {}", s.ToString());
  engine->reset();
  spdlog::info("shutdown complete");
  return 0;
}

}  // namespace
}  // namespace gojodb

int main(int argc, char** argv) { return gojodb::Run(argc, argv); }
