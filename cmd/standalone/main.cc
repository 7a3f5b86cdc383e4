// gojodb-standalone: one process, one data directory, the whole database. It runs the
// cluster's own pieces on a single-replica cluster: a controller (a Raft group of one
// member over DIR/controller), a storage node with id 1 (its shards' Raft groups over
// DIR/db), both served on one internal gRPC server on 127.0.0.1, and the gateway's
// ClusterKv over that server behind the public HTTP and gRPC APIs.
// See docs/operations/standalone.md. Exit status: 0 after a clean shutdown, 1 when the
// server cannot start (bad data directory, port in use, not ready in time), 2 on bad
// flags or config.
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <thread>

#include "api/gateway/cluster_kv.h"
#include "api/gateway/cluster_status.h"
#include "api/grpc/controller_service.h"
#include "api/grpc/convert.h"
#include "api/grpc/grpc_services.h"
#include "api/grpc/raft_transport.h"
#include "api/grpc/shard_client.h"
#include "api/http/codec.h"
#include "api/http/http_api.h"
#include "api/http/http_server.h"
#include "cmd/common/config.h"
#include "cmd/common/data_dir.h"
#include "cmd/common/server_main.h"
#include "cmd/storage/storage_node.h"
#include "core/controller/controller.h"
#include "core/mvcc/mvcc.h"
#include "internal/version.h"

namespace gojodb {
namespace {

using namespace std::chrono_literals;

constexpr uint64_t kNodeId = 1;
constexpr auto kStartupTimeout = 30s;

std::vector<server::Setting> StandaloneSettings() {
  return {
      {"data_dir", "", "data directory (created if missing)", true},
      {"http_addr", "", "HTTP listen address host:port", true},
      {"grpc_addr", "", "gRPC listen address host:port", true},
      {"storage.engine", "rocksdb", "storage engine: rocksdb or memory", false},
      {"storage.sync_writes", "true",
       "acknowledge writes only once fsynced (writes are always synced in this version)", false},
      {"storage.block_cache_mb", "256", "RocksDB block cache size", false},
      {"limits.max_key_bytes", "4096", "largest key accepted", false},
      {"limits.max_value_bytes", "8388608", "largest value accepted", false},
      {"gc.ttl_seconds", "600", "how long old versions stay readable", false},
      {"request_id_ttl_seconds", "3600", "how long a request id makes retries apply once", false},
      {"raft.tick_ms", "20", "Raft tick length", false},
      {"query.require_limit", "false",
       "refuse queries that give no page limit (400 LIMIT_REQUIRED)", false},
      {"query.walk_budget", "10000",
       "documents a sorted walk of a whole index reads without a full page before it gives "
       "way to a collection scan",
       false},
      {"bulk.part_documents", "2500",
       "documents of a bulk chunk with indexes read and committed together", false},
      {"http.threads", "64", "HTTP worker threads", false},
      {"http.max_body_mb", "64", "largest HTTP request body", false},
      {"log.level", "info", "log level: debug, info, warn, error", false},
  };
}

int Fail(int code, const Status& s) { return server::Fail("gojodb-standalone", code, s); }

// The internal server's loopback port, held by a socket bound with SO_REUSEPORT until
// the internal gRPC server (which binds with SO_REUSEPORT too) has it, so that the
// controller and the storage node know their address before the server starts and
// nobody else takes the port meanwhile. Port 0: the OS chooses one (first start);
// otherwise the port storage node 1 is registered at, which must be free.
class PortReservation {
 public:
  static Result<std::unique_ptr<PortReservation>> Take(int port) {
    const int one = 1;
    auto bind_to = [&](int fd, int p, bool reuse_port, sockaddr_in* addr) {
      *addr = sockaddr_in{};
      addr->sin_family = AF_INET;
      addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      addr->sin_port = htons(static_cast<uint16_t>(p));
      socklen_t len = sizeof(*addr);
      return ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0 &&
             (!reuse_port || ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == 0) &&
             ::bind(fd, reinterpret_cast<sockaddr*>(addr), sizeof(*addr)) == 0 &&
             ::getsockname(fd, reinterpret_cast<sockaddr*>(addr), &len) == 0;
    };
    sockaddr_in addr{};
    if (port != 0) {
      // Without SO_REUSEPORT, the bind fails if any socket holds the port.
      const int probe = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      const bool free = probe >= 0 && bind_to(probe, port, false, &addr);
      const int err = errno;
      if (probe >= 0) ::close(probe);
      if (!free) {
        return Status::Unavailable("internal port 127.0.0.1:" + std::to_string(port) +
                                   ", where storage node 1 is registered, is not free (" +
                                   std::strerror(err) + "); stop what holds it and start again");
      }
    }
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return Status::Unavailable(std::string("socket: ") + std::strerror(errno));
    std::unique_ptr<PortReservation> r(new PortReservation(fd));
    if (!bind_to(fd, port, true, &addr)) {
      return Status::Unavailable("cannot bind 127.0.0.1:" + std::to_string(port) +
                                 " for the internal server: " + std::strerror(errno));
    }
    r->port_ = ntohs(addr.sin_port);
    return r;
  }
  ~PortReservation() { Release(); }
  void Release() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  int port() const { return port_; }

 private:
  explicit PortReservation(int fd) : fd_(fd) {}
  int fd_;
  int port_ = 0;
};

// The port of a "host:port" address; 0 if there is none.
int PortOf(const std::string& addr) {
  const size_t colon = addr.rfind(':');
  if (colon == std::string::npos) return 0;
  auto port = http::ParseUint64(addr.substr(colon + 1), "port");
  return port.ok() && *port < 65536 ? static_cast<int>(*port) : 0;
}

// Refuses a data directory written by the standalone server before it ran on the
// cluster's pieces: its db/ holds a single-node store's layout, not shards.
Status CheckLayout(const std::string& data_dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const bool db = fs::exists(fs::path(data_dir) / "db", ec);
  const bool controller = fs::exists(fs::path(data_dir) / "controller", ec);
  if (db && !controller) {
    return Status::FailedPrecondition(
        "data directory " + data_dir +
        " was written by an earlier gojodb-standalone and its format has changed; export "
        "the data with the previous version and import it into a server started on an "
        "empty data directory");
  }
  return Status::OK();
}

// The cluster settings the standalone server needs: one replica per shard, and the
// GC TTL of its flag. An empty patch when they are already so.
std::string SettingsPatch(const controller::Settings& s, uint64_t gc_ttl_seconds) {
  std::string patch;
  auto add = [&](const std::string& field) { patch += (patch.empty() ? "" : ",") + field; };
  if (s.replication_factor != 1) add("\"replication_factor\":1");
  if (s.gc_ttl_seconds != gc_ttl_seconds) {
    add("\"gc_ttl_seconds\":" + std::to_string(gc_ttl_seconds));
  }
  return patch.empty() ? "" : "{" + patch + "}";
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
  auto tick_ms = config.GetUint("raft.tick_ms");
  auto http_threads = config.GetUint("http.threads");
  auto body_mb = config.GetUint("http.max_body_mb");
  auto require_limit = config.GetBool("query.require_limit");
  auto walk_budget = config.GetUint("query.walk_budget");
  auto part_docs = config.GetUint("bulk.part_documents");
  for (const Status* s :
       {&sync.status(), &cache_mb.status(), &max_key.status(), &max_value.status(),
        &gc_ttl.status(), &rid_ttl.status(), &tick_ms.status(), &http_threads.status(),
        &body_mb.status(), &require_limit.status(), &part_docs.status(), &walk_budget.status()}) {
    if (!s->ok()) return Fail(2, *s);
  }
  if (*part_docs == 0) {
    return Fail(2, Status::InvalidArgument("--bulk-part-documents must be positive"));
  }
  if (*max_key == 0 || *max_key > 4096) {
    return Fail(2, Status::InvalidArgument("--limits-max-key-bytes must be 1..4096"));
  }
  if (*gc_ttl == 0) return Fail(2, Status::InvalidArgument("--gc-ttl-seconds must be positive"));
  if (*tick_ms == 0) return Fail(2, Status::InvalidArgument("--raft-tick-ms must be positive"));
  const std::string engine_kind = config.Get("storage.engine");
  if (engine_kind != "rocksdb" && engine_kind != "memory") {
    return Fail(2, Status::InvalidArgument("--storage-engine must be rocksdb or memory"));
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
  if (Status s = CheckLayout(data_dir); !s.ok()) return Fail(1, s);
  if (!*sync) {
    spdlog::warn(
        "storage.sync_writes=false is not honoured: writes are always synced in this version");
  }

  const std::string grpc_addr = config.Get("grpc_addr");
  const std::string http_addr = config.Get("http_addr");
  rpc::TuneGrpcRuntime();

  // --- Controller: its own engine, a Raft group of one member ---
  storage::EngineOptions ceo;
  ceo.kind = engine_kind;
  ceo.path = data_dir + "/controller";
  ceo.block_cache_bytes = 32u << 20;
  auto controller_engine = storage::OpenEngine(ceo);
  if (!controller_engine.ok()) return Fail(1, controller_engine.status().WithContext("controller"));
  auto sm = controller::ControllerStateMachine::Open(controller_engine->get());
  if (!sm.ok()) return Fail(1, sm.status().WithContext("controller"));
  // A storage node is known by its address: after a restart, node 1 comes back on the
  // port it registered with.
  int internal_port_wanted = 0;
  {
    const auto st = (*sm)->State();
    if (auto it = st.nodes.find(kNodeId); it != st.nodes.end()) {
      internal_port_wanted = PortOf(it->second.grpc_addr);
    }
  }
  auto reservation = PortReservation::Take(internal_port_wanted);
  if (!reservation.ok()) return Fail(1, reservation.status());
  const std::string internal_addr = "127.0.0.1:" + std::to_string((*reservation)->port());
  // A group of one sends no messages; the transport is there all the same.
  auto raft_transport = std::make_unique<rpc::GrpcRaftTransport>(std::map<uint64_t, std::string>{});
  replication::RaftNodeOptions ro;
  ro.id = consensus::NodeId(kNodeId);
  ro.initial_voters = {consensus::NodeId(kNodeId)};
  ro.tick_interval = std::chrono::milliseconds(*tick_ms);
  ro.election_tick = 10;
  ro.snapshot_entries = 10000;
  ro.random_seed = static_cast<uint64_t>(::getpid());
  auto raft =
      replication::RaftNode::Start(ro, controller_engine->get(), sm->get(), raft_transport.get());
  if (!raft.ok()) return Fail(1, raft.status().WithContext("controller raft"));
  controller::ControllerOptions co;
  co.id = kNodeId;
  co.grpc_addr = internal_addr;
  co.http_addr = http_addr;
  co.placement_interval = 250ms;  // the first shard is placed soon after start
  auto ctl =
      std::make_unique<controller::Controller>(co, raft->get(), sm->get(), SystemClock::Default());
  rpc::LeaderChannels leaders(
      [&](uint64_t id) { return id == kNodeId ? internal_addr : std::string(); });
  rpc::ControllerServices controller_services(ctl.get(), &leaders);

  // --- Storage node 1: its own engine for the shards' Raft logs and rows ---
  storage::EngineOptions deo;
  deo.kind = engine_kind;
  deo.path = data_dir + "/db";
  // Versions below the GC safe point go in compactions (the store keeps it current).
  auto gc_safe_point = std::make_shared<mvcc::SafePoint>();
  deo.filters[mvcc::kVersionCf] = mvcc::NewVersionGcFilterFactory(gc_safe_point);
  deo.block_cache_bytes = *cache_mb << 20;
  auto db_engine = storage::OpenEngine(deo);
  if (!db_engine.ok()) return Fail(1, db_engine.status().WithContext("storage"));
  storage_node::StorageNodeOptions no;
  no.self.set_id(kNodeId);
  no.self.set_grpc_addr(internal_addr);
  no.self.set_http_addr(http_addr);
  no.controllers = {internal_addr};
  no.store.loops = 1;
  no.store.tick = std::chrono::milliseconds(*tick_ms);
  no.store.gc_safe_point = gc_safe_point;
  no.store.request_id_ttl = std::chrono::seconds(*rid_ttl);
  // Every shard is a group of one: no follower needs entries behind a snapshot, and the
  // log is compacted once it holds 16 MiB (a few dozen bulk parts).
  no.store.retain_entries = 0;
  no.store.snapshot_bytes = 16ull << 20;
  no.heartbeat = 250ms;
  no.data_dir = data_dir;
  // The storage node and the gateway take timestamps from the controller in this
  // process with plain calls (decision 29).
  auto local_timestamps = [c = ctl.get()](uint32_t count) { return c->AllocateTimestamps(count); };
  no.local_timestamps = local_timestamps;
  auto node = storage_node::StorageNode::Open(std::move(no), db_engine->get());
  if (!node.ok()) return Fail(1, node.status().WithContext("shards"));

  // --- The internal server: the controller's services and the storage node's ---
  // One Raft transport service for both: the controller's group travels as group 0,
  // shards as their ids.
  std::mutex raft_mu;
  replication::RaftNode* raft_ptr = raft->get();
  sharding::Store* store_ptr = (*node)->store();
  rpc::RaftTransportService raft_service([&](uint64_t group, consensus::Message m) {
    std::lock_guard l(raft_mu);
    if (group == 0) {
      if (raft_ptr) raft_ptr->Deliver(std::move(m));
    } else if (store_ptr) {
      store_ptr->Deliver(group, std::move(m));
    }
  });
  grpc::ServerBuilder internal_builder;
  rpc::TuneServerBuilder(&internal_builder,
                         /*share_port=*/true);  // taken over from the reservation
  int internal_port = 0;
  internal_builder.AddListeningPort(internal_addr, grpc::InsecureServerCredentials(),
                                    &internal_port);
  // Requests pass through with the public limit (Raft snapshots stream in chunks).
  const int internal_max_message = static_cast<int>(std::max<uint64_t>(64, *body_mb) << 20);
  internal_builder.SetMaxReceiveMessageSize(internal_max_message);
  internal_builder.SetMaxSendMessageSize(internal_max_message);
  internal_builder.RegisterService(&raft_service);
  controller_services.RegisterOn(&internal_builder);
  (*node)->RegisterShardKvOn(&internal_builder);
  std::unique_ptr<grpc::Server> internal_server = internal_builder.BuildAndStart();
  (*reservation)->Release();
  if (!internal_server || internal_port == 0) {
    return Fail(1, Status::Unavailable("cannot listen on " + internal_addr + " (internal gRPC)"));
  }

  // Everything that started is stopped in this order, on every way out from here on.
  std::unique_ptr<gateway::ClusterKv> kv;
  std::unique_ptr<rpc::GrpcServices> grpc_services;
  std::unique_ptr<grpc::Server> grpc_server;
  std::unique_ptr<http::HttpApi> api;
  std::unique_ptr<http::HttpServer> http_server;
  auto shutdown = [&] {
    if (http_server) {
      http_server->Stop();
      spdlog::info("http listener stopped");
    }
    if (grpc_server) {
      // In-flight calls get a second to finish; idle connections do not hold us up.
      grpc_server->Shutdown(std::chrono::system_clock::now() + 1s);
      grpc_services->Drain();
      spdlog::info("grpc server stopped");
    }
    kv.reset();
    // Long polls of the shard map are cancelled at the deadline.
    internal_server->Shutdown(std::chrono::system_clock::now() + 1s);
    {
      std::lock_guard l(raft_mu);
      store_ptr = nullptr;
    }
    node->reset();
    ctl.reset();
    {
      std::lock_guard l(raft_mu);
      raft_ptr = nullptr;
    }
    raft->reset();
    raft_transport.reset();
    for (auto* e : {db_engine->get(), controller_engine->get()}) {
      if (Status s = e->SyncWal(); !s.ok())
        spdlog::error("final WAL sync failed: {}", s.ToString());
    }
    db_engine->reset();
    controller_engine->reset();
  };
  auto fail_started = [&](int code, const Status& s) {
    shutdown();
    return Fail(code, s);
  };

  // A single-replica cluster: set before the node registers, so that placement puts
  // the first shard on node 1.
  const auto deadline = std::chrono::steady_clock::now() + kStartupTimeout;
  Status settled = Status::Unavailable("the controller did not elect itself leader");
  while (std::chrono::steady_clock::now() < deadline) {
    if (!ctl->IsLeader()) {
      std::this_thread::sleep_for(10ms);
      continue;
    }
    const std::string patch = SettingsPatch(ctl->State().settings, *gc_ttl);
    if (patch.empty()) {
      settled = Status::OK();
      break;
    }
    auto r = ctl->UpdateSettings(patch);
    if (r.ok()) continue;  // checked again against the applied state
    settled = r.status();
    std::this_thread::sleep_for(50ms);
  }
  if (!settled.ok()) {
    return fail_started(1, settled.WithContext("controller not ready within " +
                                               std::to_string(kStartupTimeout.count()) + " s"));
  }
  (*node)->Start();

  gateway::ClusterKvOptions ko;
  ko.controllers = {internal_addr};
  ko.limits.max_key_bytes = *max_key;
  ko.limits.max_value_bytes = *max_value;
  ko.require_query_limit = *require_limit;
  ko.query_walk_budget = *walk_budget;
  ko.ingest_part_docs = *part_docs;
  // Ready once this server's shards have leaders (writes are served at once), and from
  // then on, so a leader change does not flap the readiness probe.
  ko.ready_check = [n = node->get(), led = std::make_shared<std::atomic<bool>>(false)] {
    if (led->load()) return Status::OK();
    const auto st = n->store()->GetStats();
    if (st.shards == 0 || st.leaders < st.shards) {
      return Status::Unavailable("the shards on this server have no leader yet");
    }
    led->store(true);
    return Status::OK();
  };
  // The gateway reaches node 1 with plain calls too; the internal server still carries
  // the Raft traffic, the shard map, the catalog and any other client.
  ko.local_nodes[kNodeId] =
      std::shared_ptr<rpc::ShardClient>(std::shared_ptr<void>(), (*node)->local_client());
  ko.local_timestamps = local_timestamps;
  auto started_kv = gateway::ClusterKv::Start(ko);
  if (!started_kv.ok()) return fail_started(1, started_kv.status());
  kv = std::move(started_kv).value();

  Metrics metrics;
  metrics.AddGaugeSource("storage", [e = db_engine->get(), n = node->get()] {
    auto stats = e->Stats();
    const auto st = n->store()->GetStats();
    stats["shards"] = st.shards;
    stats["leaders"] = st.leaders;
    stats["dropped_ranges_compacted"] = st.dropped_ranges_compacted;
    stats["dropped_range_compaction_errors"] = st.dropped_range_errors;
    stats["dropped_ranges_pending"] = st.dropped_ranges_pending;
    stats["raft_log_entries"] = st.raft_log_entries;
    return stats;
  });
  metrics.AddGaugeSource("gateway", [k = kv.get()] { return k->StorageStats(); });
  metrics.AddGaugeSource("controller", [r = raft->get(), s = sm->get()] {
    const auto gs = r->GetStatus();
    const auto st = s->State();
    return std::map<std::string, uint64_t>{{"term", gs.term},
                                           {"applied_index", gs.applied.value()},
                                           {"is_leader", gs.is_leader ? 1 : 0},
                                           {"shards", st.shards.size()},
                                           {"map_version", st.map_version}};
  });

  grpc_services = std::make_unique<rpc::GrpcServices>(
      kv.get(), &metrics, [k = kv.get()] { return gateway::ClusterStatusProto(k, "standalone"); });
  grpc::ServerBuilder builder;
  rpc::TuneServerBuilder(&builder);
  int bound_port = 0;
  builder.AddListeningPort(grpc_addr, grpc::InsecureServerCredentials(), &bound_port);
  builder.SetMaxReceiveMessageSize(static_cast<int>((*body_mb) << 20));
  builder.SetMaxSendMessageSize(static_cast<int>((*body_mb) << 20));
  grpc_services->RegisterOn(&builder);
  grpc_server = builder.BuildAndStart();
  if (!grpc_server || bound_port == 0) {
    grpc_server.reset();
    return fail_started(1, Status::Unavailable("cannot listen on " + grpc_addr + " (gRPC)"));
  }

  api = std::make_unique<http::HttpApi>(
      kv.get(), &metrics, [k = kv.get()] { return gateway::ClusterStatusJson(k, "standalone"); });
  http_server = std::make_unique<http::HttpServer>(
      api.get(), http::HttpServerOptions{.max_body_bytes = (*body_mb) << 20,
                                         .threads = static_cast<int>(*http_threads)});
  if (Status s = http_server->Start(http_addr); !s.ok()) {
    http_server.reset();
    return fail_started(1, s);
  }

  // /readyz answers 503 until the first shard has a leader the gateway can reach.
  Status ready = kv->Ready();
  while (!ready.ok() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
    ready = kv->Ready();
  }
  if (!ready.ok()) {
    return fail_started(
        1, ready.WithContext("not ready within " + std::to_string(kStartupTimeout.count()) + " s"));
  }
  spdlog::info(
      "gojodb-standalone {} serving data_dir={} engine={} sync_writes={} http={} grpc={} "
      "internal={}",
      kVersion, data_dir, engine_kind, *sync, http_addr, grpc_addr, internal_addr);

  signals.Wait();
  shutdown();
  spdlog::info("shutdown complete");
  return 0;
}

}  // namespace
}  // namespace gojodb

int main(int argc, char** argv) { return gojodb::Run(argc, argv); }
