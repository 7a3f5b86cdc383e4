// gojodb-storage: a storage node. It hosts shard replicas (core/sharding Store) on one
// RocksDB, registers with the controller, heartbeats its shards, carries out the
// controller's commands, and serves ShardKv to gateways and Raft to its peers. See
// docs/operations/storage.md. Exit status: 0 after a clean shutdown, 1 when the server
// cannot start (bad data directory, port in use), 2 on bad flags or config.
#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <set>
#include <thread>

#include "api/grpc/convert.h"
#include "api/http/codec.h"
#include "api/http/http_server.h"
#include "cmd/common/config.h"
#include "cmd/common/data_dir.h"
#include "cmd/common/server_main.h"
#include "cmd/storage/storage_node.h"
#include "core/mvcc/mvcc.h"
#include "core/sharding/shard_machine.h"
#include "internal/metrics.h"
#include "internal/version.h"

namespace gojodb {
namespace {

using namespace std::chrono_literals;

std::vector<server::Setting> StorageSettings() {
  return {
      {"id", "", "this node's id (a positive integer, unique in the cluster)", true},
      {"data_dir", "", "data directory (created if missing)", true},
      {"http_addr", "", "HTTP listen address host:port", true},
      {"grpc_addr", "", "gRPC listen address host:port (gateways and Raft)", true},
      {"controllers", "", "the controllers' gRPC addresses: host:port,host:port,...", true},
      {"advertise_addr", "", "the gRPC address others reach this node at (default: --grpc-addr)",
       false},
      {"zone", "", "failure domain; replicas of a shard are spread over zones", false},
      {"peer_addrs", "",
       "where to reach other storage nodes for Raft, overriding their registered "
       "addresses: 2=host:port,3=host:port (a proxy, another interface)",
       false},
      {"capacity_bytes", "0", "disk capacity to report (0: the data directory's file system)",
       false},
      {"raft.tick_ms", "20", "Raft tick length", false},
      {"raft.election_ticks", "10", "election timeout in ticks (randomized up to twice)", false},
      {"raft.loops", "2", "threads driving the node's Raft groups", false},
      {"raft.snapshot_entries", "10000", "snapshot a shard every this many entries", false},
      {"raft.retain_entries", "1000", "log entries kept behind a snapshot", false},
      {"raft.snapshot_log_mb", "32",
       "also snapshot a shard once this many MiB of entries applied since the last one (0: "
       "by count only)",
       false},
      {"raft.retain_log_mb", "64",
       "of the entries kept behind a snapshot, at most this many MiB (0: by count only)", false},
      {"raft.lease_reads", "true",
       "serve linearizable reads under the shard leader's lease (false: a ReadIndex "
       "heartbeat round per batch of reads; needs clocks that tick at the same rate)",
       false},
      {"request_id_ttl_seconds", "3600",
       "how long a request id makes retries apply once (0: keep request records forever)", false},
      {"timestamp_batch", "1024",
       "timestamps taken from the controller's oracle per call (1..65536); writes use them "
       "in turn",
       false},
      {"heartbeat_ms", "500", "how often the node reports to the controller", false},
      {"request_timeout_ms", "5000", "longest time a request may take here", false},
      {"log.level", "info", "log level: debug, info, warn, error", false},
  };
}

int Fail(int code, const Status& s) { return server::Fail("gojodb-storage", code, s); }

Result<std::vector<std::string>> ParseAddrs(const std::string& flag) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= flag.size()) {
    size_t end = flag.find(',', pos);
    if (end == std::string::npos) end = flag.size();
    std::string a = flag.substr(pos, end - pos);
    if (auto hp = http::SplitHostPort(a); !hp.ok()) {
      return hp.status().WithContext("--controllers entry '" + a + "'");
    }
    out.push_back(std::move(a));
    pos = end + 1;
  }
  return out;
}

// "2=h:p,3=h:p" -> {2: "h:p", 3: "h:p"}; empty: none.
Result<std::map<uint64_t, std::string>> ParsePeerAddrs(const std::string& flag) {
  std::map<uint64_t, std::string> out;
  if (flag.empty()) return out;
  size_t pos = 0;
  while (pos <= flag.size()) {
    size_t end = flag.find(',', pos);
    if (end == std::string::npos) end = flag.size();
    const std::string part = flag.substr(pos, end - pos);
    const size_t eq = part.find('=');
    auto id = eq == std::string::npos ? Result<uint64_t>(Status::InvalidArgument(""))
                                      : http::ParseUint64(part.substr(0, eq), "id");
    if (!id.ok() || *id == 0) {
      return Status::InvalidArgument("--peer-addrs entry '" + part + "' is not ID=host:port");
    }
    const std::string addr = part.substr(eq + 1);
    if (auto hp = http::SplitHostPort(addr); !hp.ok()) {
      return hp.status().WithContext("--peer-addrs entry '" + part + "'");
    }
    if (!out.emplace(*id, addr).second) {
      return Status::InvalidArgument("--peer-addrs names node " + std::to_string(*id) + " twice");
    }
    pos = end + 1;
  }
  return out;
}

http::HttpResponse Reply(int status, std::string body,
                         std::string content_type = "application/json") {
  http::HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  r.content_type = std::move(content_type);
  return r;
}

int Run(int argc, char** argv) {
  CLI::App app{"GojoDB storage node: hosts shard replicas"};
  server::Config config(StorageSettings());
  if (auto stop = server::ParseCommandLine(&app, &config, argc, argv, "gojodb-storage"))
    return *stop;

  auto id = config.GetUint("id");
  auto capacity = config.GetUint("capacity_bytes");
  auto tick_ms = config.GetUint("raft.tick_ms");
  auto election_ticks = config.GetUint("raft.election_ticks");
  auto loops = config.GetUint("raft.loops");
  auto snapshot_entries = config.GetUint("raft.snapshot_entries");
  auto retain_entries = config.GetUint("raft.retain_entries");
  auto snapshot_log_mb = config.GetUint("raft.snapshot_log_mb");
  auto retain_log_mb = config.GetUint("raft.retain_log_mb");
  auto heartbeat_ms = config.GetUint("heartbeat_ms");
  auto lease_reads = config.GetBool("raft.lease_reads");
  auto rid_ttl = config.GetUint("request_id_ttl_seconds");
  auto timeout_ms = config.GetUint("request_timeout_ms");
  auto ts_batch = config.GetUint("timestamp_batch");
  for (const Status* s :
       {&id.status(), &capacity.status(), &tick_ms.status(), &election_ticks.status(),
        &loops.status(), &snapshot_entries.status(), &retain_entries.status(),
        &snapshot_log_mb.status(), &retain_log_mb.status(), &heartbeat_ms.status(),
        &timeout_ms.status(), &lease_reads.status(), &rid_ttl.status(), &ts_batch.status()}) {
    if (!s->ok()) return Fail(2, *s);
  }
  if (*id == 0) return Fail(2, Status::InvalidArgument("--id must be a positive integer"));
  if (*snapshot_log_mb > (1u << 20) || *retain_log_mb > (1u << 20)) {
    return Fail(2, Status::InvalidArgument(
                       "--raft-snapshot-log-mb and --raft-retain-log-mb take at most 1048576"));
  }
  if (*tick_ms == 0 || *election_ticks < 2 || *loops == 0 || *loops > 64 || *heartbeat_ms == 0 ||
      *timeout_ms == 0) {
    return Fail(2, Status::InvalidArgument(
                       "--raft-tick-ms, --heartbeat-ms and --request-timeout-ms must be "
                       "positive; --raft-election-ticks at least 2; --raft-loops 1..64"));
  }
  if (*ts_batch == 0 || *ts_batch > 65536) {
    return Fail(2, Status::InvalidArgument("--timestamp-batch must be 1..65536"));
  }
  for (const char* key : {"http_addr", "grpc_addr"}) {
    if (auto hp = http::SplitHostPort(config.Get(key)); !hp.ok()) {
      return Fail(2, hp.status().WithContext(server::Config::FlagName(key)));
    }
  }
  std::string advertise = config.Get("advertise_addr");
  if (advertise.empty()) advertise = config.Get("grpc_addr");
  if (auto hp = http::SplitHostPort(advertise); !hp.ok()) {
    return Fail(2, hp.status().WithContext("--advertise-addr"));
  }
  auto controllers = ParseAddrs(config.Get("controllers"));
  if (!controllers.ok()) return Fail(2, controllers.status());
  auto peer_addrs = ParsePeerAddrs(config.Get("peer_addrs"));
  if (!peer_addrs.ok()) return Fail(2, peer_addrs.status());

  server::ShutdownSignals signals;

  const std::string data_dir = config.Get("data_dir");
  auto lock = server::DataDirLock::Acquire(data_dir);
  if (!lock.ok()) return Fail(1, lock.status());
  storage::EngineOptions eo;
  eo.path = data_dir + "/db";
  // Versions below the GC safe point go in compactions (the store keeps it current).
  auto gc_safe_point = std::make_shared<mvcc::SafePoint>();
  eo.filters[mvcc::kVersionCf] = mvcc::NewVersionGcFilterFactory(gc_safe_point);
  auto engine = storage::OpenEngine(eo);
  if (!engine.ok()) return Fail(1, engine.status().WithContext("storage"));

  rpc::TuneGrpcRuntime();
  storage_node::StorageNodeOptions no;
  no.self.set_id(*id);
  no.self.set_grpc_addr(advertise);
  no.self.set_http_addr(config.Get("http_addr"));
  no.self.set_capacity_bytes(*capacity);
  if (!config.Get("zone").empty()) (*no.self.mutable_labels())["zone"] = config.Get("zone");
  no.controllers = *controllers;
  no.peer_addrs = *peer_addrs;
  no.store.loops = static_cast<int>(*loops);
  no.store.tick = std::chrono::milliseconds(*tick_ms);
  no.store.gc_safe_point = gc_safe_point;
  no.store.election_tick = static_cast<int>(*election_ticks);
  no.store.snapshot_entries = *snapshot_entries;
  no.store.retain_entries = *retain_entries;
  no.store.snapshot_bytes = *snapshot_log_mb << 20;
  no.store.retain_bytes = *retain_log_mb << 20;
  no.store.lease_reads = *lease_reads;
  no.store.request_id_ttl = std::chrono::seconds(*rid_ttl);
  no.timestamp_batch = static_cast<uint32_t>(*ts_batch);
  no.heartbeat = std::chrono::milliseconds(*heartbeat_ms);
  no.request_timeout = std::chrono::milliseconds(*timeout_ms);
  no.data_dir = data_dir;
  auto node = storage_node::StorageNode::Open(std::move(no), engine->get());
  if (!node.ok()) return Fail(1, node.status().WithContext("shards"));

  grpc::ServerBuilder builder;

  rpc::TuneServerBuilder(&builder);
  int bound_port = 0;
  builder.AddListeningPort(config.Get("grpc_addr"), grpc::InsecureServerCredentials(), &bound_port);
  builder.SetMaxReceiveMessageSize(64 << 20);
  builder.SetMaxSendMessageSize(64 << 20);
  (*node)->RegisterOn(&builder);
  std::unique_ptr<grpc::Server> grpc_server = builder.BuildAndStart();
  if (!grpc_server || bound_port == 0) {
    return Fail(1, Status::Unavailable("cannot listen on " + config.Get("grpc_addr") + " (gRPC)"));
  }

  Metrics metrics;
  metrics.AddGaugeSource("storage", [n = node->get()] {
    auto st = n->store()->GetStats();
    return std::map<std::string, uint64_t>{
        {"shards", st.shards},
        {"leaders", st.leaders},
        {"failed_replicas", st.failed},
        {"registered", n->registered() ? 1 : 0},
        {"heartbeats", n->heartbeats()},
        {"raft_loop_iterations", st.loops.iterations},
        {"raft_log_writes", st.loops.log_writes},
        {"raft_synced_writes", st.loops.synced_writes},
        {"raft_readies", st.loops.readies},
        {"snapshots_deferred", st.snapshots_deferred},
        {"snapshots_installed", st.snapshots_installed},
        {"raft_log_entries", st.raft_log_entries},
        {"dropped_ranges_compacted", st.dropped_ranges_compacted},
        {"dropped_range_compaction_errors", st.dropped_range_errors},
        {"dropped_ranges_pending", st.dropped_ranges_pending}};
  });
  metrics.AddGaugeSource("engine", [e = engine->get()] { return e->Stats(); });
  storage_node::StorageNode* n = node->get();
  http::HttpServer http_server(
      [&](std::string_view method, std::string_view target, std::string_view,
          const http::HeaderLookup&) -> http::HttpResponse {
        const std::string_view path = target.substr(0, target.find('?'));
        if (method != "GET") {
          return http::ErrorResponse(Status::Unimplemented(std::string(method) + " " +
                                                           std::string(path) + " is not served"));
        }
        if (path == "/healthz") return Reply(200, "{\"status\":\"ok\"}");
        if (path == "/readyz") {
          if (!n->registered()) {
            return http::ErrorResponse(
                Status::Unavailable("not registered with the controller yet"));
          }
          // A replica that stopped on a failed write (a full disk) makes the node unready,
          // and says why; its shards are served by their other replicas meanwhile.
          if (auto st = n->store()->GetStats(); st.failed > 0) {
            return http::ErrorResponse(Status::Unavailable(
                std::to_string(st.failed) + " shard replica(s) stopped; first: " + st.failure));
          }
          return Reply(200, "{\"status\":\"ready\"}");
        }
        if (path == "/metrics") return Reply(200, metrics.Render(), "text/plain; version=0.0.4");
        if (path == "/v1/shards") return Reply(200, n->ShardsJson());
        return http::ErrorResponse(Status::NotFound("no such path: " + std::string(path)));
      },
      {.max_body_bytes = 1u << 16, .threads = 4});
  if (Status s = http_server.Start(config.Get("http_addr")); !s.ok()) {
    grpc_server->Shutdown();
    return Fail(1, s);
  }
  n->Start();

  spdlog::info("gojodb-storage {} id={} serving data_dir={} http={} grpc={} controllers={}",
               kVersion, *id, data_dir, config.Get("http_addr"), config.Get("grpc_addr"),
               config.Get("controllers"));

  signals.Wait();
  http_server.Stop();
  grpc_server->Shutdown(std::chrono::system_clock::now() + 1s);
  node->reset();
  if (Status s = (*engine)->SyncWal(); !s.ok())
    spdlog::error("final WAL sync failed: {}", s.ToString());
  engine->reset();
  spdlog::info("shutdown complete");
  return 0;
}

}  // namespace
}  // namespace gojodb

int main(int argc, char** argv) { return gojodb::Run(argc, argv); }
