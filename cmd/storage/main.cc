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
#include "api/grpc/raft_transport.h"
#include "api/grpc/shard_service.h"
#include "api/http/codec.h"
#include "api/http/http_server.h"
#include "cmd/common/config.h"
#include "cmd/common/data_dir.h"
#include "cmd/common/server_main.h"
#include "cmd/storage/controller_link.h"
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

controller::ShardRecord FromProto(const v1::ShardDescriptor& p) {
  controller::ShardRecord d;
  d.id = p.id();
  d.start_key = p.start_key();
  d.end_key = p.end_key();
  d.epoch = {p.conf_ver(), p.version()};
  for (const auto& r : p.replicas()) d.replicas.push_back({r.node(), r.learner()});
  d.leader = p.leader();
  return d;
}

void ToProto(const controller::ShardRecord& d, v1::ShardDescriptor* p) {
  p->set_id(d.id);
  p->set_start_key(d.start_key);
  p->set_end_key(d.end_key);
  p->set_conf_ver(d.epoch.conf_ver);
  p->set_version(d.epoch.version);
  for (const auto& r : d.replicas) {
    auto* rp = p->add_replicas();
    rp->set_node(r.node);
    rp->set_learner(r.learner);
  }
  p->set_leader(d.leader);
}

class Transports final : public sharding::GroupTransports {
 public:
  explicit Transports(rpc::GrpcRaftTransport* t) : t_(t) {}
  std::unique_ptr<replication::Transport> ForGroup(uint64_t group) override {
    return t_->ForGroup(group);
  }

 private:
  rpc::GrpcRaftTransport* t_;
};

// Registration, heartbeats, the controller's commands, and peers' addresses.
class NodeAgent {
 public:
  NodeAgent(uint64_t id, v1::NodeDescriptor self, storage_node::ControllerLink* link,
            sharding::Store* store, rpc::GrpcRaftTransport* transport,
            std::chrono::milliseconds interval, std::string data_dir,
            std::map<uint64_t, std::string> peer_addrs)
      : id_(id),
        self_(std::move(self)),
        link_(link),
        store_(store),
        transport_(transport),
        interval_(interval),
        data_dir_(std::move(data_dir)),
        peer_addrs_(std::move(peer_addrs)) {
    for (const auto& [node, addr] : peer_addrs_) transport_->SetPeer(node, addr);
  }

  void Start() {
    thread_ = std::thread([this] { Run(); });
    map_thread_ = std::thread([this] { WatchMap(); });
  }
  void Stop() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    if (map_thread_.joinable()) map_thread_.join();
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return running_commands_ == 0; });
  }
  bool registered() const { return registered_.load(); }
  uint64_t heartbeats() const { return heartbeats_.load(); }

 private:
  bool Sleep(std::chrono::milliseconds d) {
    std::unique_lock lock(mu_);
    return !cv_.wait_for(lock, d, [&] { return stopping_; });
  }

  void Run() {
    v1::RegisterNodeRequest reg;
    *reg.mutable_node() = self_;
    while (!registered_) {
      auto r = link_->RegisterNode(reg);
      if (r.ok()) {
        registered_ = true;
        spdlog::info("registered with the controller as node {}", id_);
        break;
      }
      spdlog::warn("registration failed: {}", r.status().ToString());
      // Refusals (a taken id or address, a removed node) will not change by retrying
      // quickly; unavailability will.
      if (!Sleep(r.status().code() == StatusCode::kUnavailable ? 200ms : 2s)) return;
    }
    while (Sleep(interval_)) Beat();
  }

  void Beat() {
    v1::HeartbeatRequest req;
    req.set_node_id(id_);
    const auto stats = store_->GetStats();
    auto* st = req.mutable_stats();
    std::error_code ec;
    auto space = std::filesystem::space(data_dir_, ec);
    st->set_capacity_bytes(self_.capacity_bytes() != 0 ? self_.capacity_bytes()
                           : ec                        ? 0
                                                       : space.capacity);
    st->set_used_bytes(ec ? 0 : space.capacity - space.available);
    st->set_shard_count(stats.shards);
    st->set_leader_count(stats.leaders);
    for (const auto& d : store_->Describe()) ToProto(d, req.add_shards());
    auto r = link_->Heartbeat(req);
    if (!r.ok()) {
      spdlog::warn("heartbeat failed: {}", r.status().ToString());
      if (r.status().code() == StatusCode::kNotFound) registered_ = false;
      return;
    }
    heartbeats_++;
    for (const auto& c : r->commands()) Execute(c);
    // The split threshold is a cluster setting; follow it.
    if (heartbeats_ % 10 == 1) {
      if (auto settings = link_->GetSettings(); settings.ok()) {
        store_->SetSplitBytes(settings->shard_split_bytes());
      }
    }
  }

  // Commands run on their own threads: adding a replica waits for it to catch up.
  void Execute(const v1::ShardCommand& c) {
    const uint64_t shard = c.shard().id();
    {
      std::lock_guard lock(mu_);
      if (stopping_ || !busy_.insert(shard).second) return;  // one command per shard at once
      running_commands_++;
    }
    std::thread([this, c, shard] {
      Status s;
      const auto d = FromProto(c.shard());
      if (c.kind() == "create") {
        s = store_->CreateReplica(d);
      } else if (c.kind() == "add_replica") {
        s = store_->AddReplica(shard, c.node(), 30s);
      } else if (c.kind() == "remove_replica") {
        s = store_->RemoveReplica(shard, c.node(), 10s);
      } else if (c.kind() == "transfer_leader") {
        s = store_->TransferLeader(shard, c.node());
      } else {
        s = Status::InvalidArgument("unknown command '" + c.kind() + "'");
      }
      if (s.ok()) {
        spdlog::info("shard {}: {} node {} done ({})", shard, c.kind(), c.node(), c.reason());
      } else {
        spdlog::warn("shard {}: {} node {} failed: {}", shard, c.kind(), c.node(), s.ToString());
      }
      std::lock_guard lock(mu_);
      busy_.erase(shard);
      running_commands_--;
      cv_.notify_all();
    }).detach();
  }

  // Follows the controller's map: peers' addresses for the transport, and replicas the
  // map says this node no longer holds (a removal this replica did not apply itself).
  void WatchMap() {
    uint64_t known = 0;
    while (true) {
      {
        std::lock_guard lock(mu_);
        if (stopping_) return;
      }
      auto m = link_->GetShardMap(known, 2000);
      if (!m.ok()) {
        if (!Sleep(500ms)) return;
        continue;
      }
      known = m->version();
      for (const auto& n : m->nodes()) {
        if (n.id() == id_ || n.grpc_addr().empty() || peer_addrs_.count(n.id())) continue;
        transport_->SetPeer(n.id(), n.grpc_addr());
      }
      for (const auto& sp : m->shards()) {
        const auto d = FromProto(sp);
        auto local = store_->DescriptorOf(d.id);
        if (!local.ok() || !sharding::Initialized(*local)) continue;
        const bool member = std::any_of(d.replicas.begin(), d.replicas.end(),
                                        [&](const auto& r) { return r.node == id_; });
        if (!member && d.epoch.conf_ver > local->epoch.conf_ver) {
          Status s = store_->DestroyReplica(d.id);
          spdlog::info("shard {}: removed from this node; replica dropped: {}", d.id, s.ToString());
        }
      }
    }
  }

  const uint64_t id_;
  const v1::NodeDescriptor self_;
  storage_node::ControllerLink* const link_;
  sharding::Store* const store_;
  rpc::GrpcRaftTransport* const transport_;
  const std::chrono::milliseconds interval_;
  const std::string data_dir_;
  const std::map<uint64_t, std::string> peer_addrs_;  // --peer-addrs: these win
  std::atomic<bool> registered_{false};
  std::atomic<uint64_t> heartbeats_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;     // GUARDED_BY(mu_)
  std::set<uint64_t> busy_;   // GUARDED_BY(mu_)
  int running_commands_ = 0;  // GUARDED_BY(mu_)
  std::thread thread_;
  std::thread map_thread_;
};

http::HttpResponse Reply(int status, std::string body,
                         std::string content_type = "application/json") {
  http::HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  r.content_type = std::move(content_type);
  return r;
}

std::string Json(const std::map<std::string, uint64_t>& m) {
  std::string out = "{";
  for (const auto& [k, v] : m) {
    if (out.size() > 1) out += ",";
    out += "\"" + k + "\":" + std::to_string(v);
  }
  return out + "}";
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
  auto heartbeat_ms = config.GetUint("heartbeat_ms");
  auto timeout_ms = config.GetUint("request_timeout_ms");
  for (const Status* s : {&id.status(), &capacity.status(), &tick_ms.status(),
                          &election_ticks.status(), &loops.status(), &snapshot_entries.status(),
                          &retain_entries.status(), &heartbeat_ms.status(), &timeout_ms.status()}) {
    if (!s->ok()) return Fail(2, *s);
  }
  if (*id == 0) return Fail(2, Status::InvalidArgument("--id must be a positive integer"));
  if (*tick_ms == 0 || *election_ticks < 2 || *loops == 0 || *loops > 64 || *heartbeat_ms == 0 ||
      *timeout_ms == 0) {
    return Fail(2, Status::InvalidArgument(
                       "--raft-tick-ms, --heartbeat-ms and --request-timeout-ms must be "
                       "positive; --raft-election-ticks at least 2; --raft-loops 1..64"));
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
  auto engine = storage::OpenEngine(eo);
  if (!engine.ok()) return Fail(1, engine.status().WithContext("storage"));

  rpc::TuneGrpcRuntime();
  const auto timeout = std::chrono::milliseconds(*timeout_ms);
  storage_node::ControllerLink link(*controllers,
                                    std::min(timeout, std::chrono::milliseconds(3000)));
  storage_node::ControllerTso tso(&link);
  auto transport = std::make_unique<rpc::GrpcRaftTransport>(std::map<uint64_t, std::string>{});
  Transports transports(transport.get());

  // Raft messages may arrive before the store opens; they are dropped (Raft retries).
  std::atomic<sharding::Store*> store_ptr{nullptr};
  rpc::RaftTransportService raft_service([&](uint64_t group, consensus::Message m) {
    if (auto* s = store_ptr.load()) s->Deliver(group, std::move(m));
  });

  sharding::StoreOptions so;
  so.node_id = *id;
  so.loops = static_cast<int>(*loops);
  so.tick = std::chrono::milliseconds(*tick_ms);
  so.election_tick = static_cast<int>(*election_ticks);
  so.snapshot_entries = *snapshot_entries;
  so.retain_entries = *retain_entries;
  auto store = sharding::Store::Open(so, engine->get(), &tso, SystemClock::Default(), &transports);
  if (!store.ok()) return Fail(1, store.status().WithContext("shards"));
  store_ptr = store->get();
  (*store)->SetShardIdAllocator([&link] { return link.AllocateShardId(); });
  transport->SetSnapshotReporter([&](uint64_t group, uint64_t to, bool ok) {
    if (auto* s = store_ptr.load()) s->ReportSnapshot(group, consensus::NodeId(to), ok);
  });

  rpc::ShardKvService shard_service(store->get(), timeout);
  grpc::ServerBuilder builder;
  int bound_port = 0;
  builder.AddListeningPort(config.Get("grpc_addr"), grpc::InsecureServerCredentials(), &bound_port);
  builder.SetMaxReceiveMessageSize(64 << 20);
  builder.SetMaxSendMessageSize(64 << 20);
  builder.RegisterService(&raft_service);
  builder.RegisterService(&shard_service);
  std::unique_ptr<grpc::Server> grpc_server = builder.BuildAndStart();
  if (!grpc_server || bound_port == 0) {
    return Fail(1, Status::Unavailable("cannot listen on " + config.Get("grpc_addr") + " (gRPC)"));
  }

  v1::NodeDescriptor self;
  self.set_id(*id);
  self.set_grpc_addr(advertise);
  self.set_http_addr(config.Get("http_addr"));
  self.set_capacity_bytes(*capacity);
  if (!config.Get("zone").empty()) (*self.mutable_labels())["zone"] = config.Get("zone");
  NodeAgent agent(*id, self, &link, store->get(), transport.get(),
                  std::chrono::milliseconds(*heartbeat_ms), data_dir, *peer_addrs);

  Metrics metrics;
  metrics.AddGaugeSource("storage", [s = store->get(), &agent] {
    auto st = s->GetStats();
    return std::map<std::string, uint64_t>{{"shards", st.shards},
                                           {"leaders", st.leaders},
                                           {"registered", agent.registered() ? 1 : 0},
                                           {"heartbeats", agent.heartbeats()}};
  });
  metrics.AddGaugeSource("engine", [e = engine->get()] { return e->Stats(); });
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
          if (!agent.registered()) {
            return http::ErrorResponse(
                Status::Unavailable("not registered with the controller yet"));
          }
          return Reply(200, "{\"status\":\"ready\"}");
        }
        if (path == "/metrics") return Reply(200, metrics.Render(), "text/plain; version=0.0.4");
        if (path == "/v1/shards") {
          std::string out = "{\"shards\":[";
          bool first = true;
          for (const auto& d : store_ptr.load()->Describe()) {
            if (!first) out += ",";
            first = false;
            auto gs = store_ptr.load()->GroupStatusOf(d.id);
            out += Json({{"id", d.id},
                         {"conf_ver", d.epoch.conf_ver},
                         {"version", d.epoch.version},
                         {"leader", gs.ok() ? gs->leader.value() : 0},
                         {"applied", gs.ok() ? gs->applied.value() : 0}});
          }
          return Reply(200, out + "]}");
        }
        return http::ErrorResponse(Status::NotFound("no such path: " + std::string(path)));
      },
      {.max_body_bytes = 1u << 16, .threads = 4});
  if (Status s = http_server.Start(config.Get("http_addr")); !s.ok()) {
    grpc_server->Shutdown();
    return Fail(1, s);
  }
  agent.Start();

  spdlog::info("gojodb-storage {} id={} serving data_dir={} http={} grpc={} controllers={}",
               kVersion, *id, data_dir, config.Get("http_addr"), config.Get("grpc_addr"),
               config.Get("controllers"));

  signals.Wait();
  agent.Stop();
  http_server.Stop();
  grpc_server->Shutdown(std::chrono::system_clock::now() + 1s);
  store_ptr = nullptr;
  transport->SetSnapshotReporter(nullptr);
  store->reset();
  transport.reset();
  if (Status s = (*engine)->SyncWal(); !s.ok())
    spdlog::error("final WAL sync failed: {}", s.ToString());
  engine->reset();
  spdlog::info("shutdown complete");
  return 0;
}

}  // namespace
}  // namespace gojodb

int main(int argc, char** argv) { return gojodb::Run(argc, argv); }
