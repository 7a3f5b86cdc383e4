// gojodb-controller: one member of the control plane's Raft group. See
// docs/operations/controller.md. Exit status: 0 after a clean shutdown, 1 when the
// server cannot start (bad data directory, port in use), 2 on bad flags or config.
#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <filesystem>

#include "api/grpc/controller_service.h"
#include "api/grpc/convert.h"
#include "api/grpc/raft_transport.h"
#include "api/http/codec.h"
#include "api/http/http_server.h"
#include "cmd/common/config.h"
#include "cmd/common/data_dir.h"
#include "cmd/common/server_main.h"
#include "cmd/controller/controller_http.h"
#include "internal/version.h"

namespace gojodb {
namespace {

using namespace std::chrono_literals;

std::vector<server::Setting> ControllerSettings() {
  return {
      {"id", "", "this member's id (a positive integer, unique in the group)", true},
      {"data_dir", "", "data directory (created if missing)", true},
      {"http_addr", "", "HTTP listen address host:port", true},
      {"grpc_addr", "", "gRPC listen address host:port (clients and Raft)", true},
      {"peers", "", "the group's founding members: 1=host:port,2=host:port,... (gRPC)", true},
      {"join", "false",
       "join a running group (after `gojodb controller add`) instead of "
       "founding one",
       false},
      {"raft.tick_ms", "20", "Raft tick length", false},
      {"raft.election_ticks", "10", "election timeout in ticks (randomized up to twice)", false},
      {"raft.snapshot_entries", "10000", "take a state snapshot every this many entries", false},
      {"raft.retain_entries", "1000", "log entries kept behind a snapshot for slow followers",
       false},
      {"tso.window_ms", "3000", "how far ahead the timestamp limit is committed", false},
      {"placement.interval_ms", "1000", "how often the leader plans placement", false},
      {"request_timeout_ms", "5000", "how long a replicated request may take", false},
      {"log.level", "info", "log level: debug, info, warn, error", false},
  };
}

int Fail(int code, const Status& s) { return server::Fail("gojodb-controller", code, s); }

// "1=h:p,2=h:p" -> {1: "h:p", 2: "h:p"}.
Result<std::map<uint64_t, std::string>> ParsePeers(const std::string& flag) {
  std::map<uint64_t, std::string> peers;
  size_t pos = 0;
  while (pos <= flag.size()) {
    size_t end = flag.find(',', pos);
    if (end == std::string::npos) end = flag.size();
    const std::string part = flag.substr(pos, end - pos);
    const size_t eq = part.find('=');
    if (eq == std::string::npos) {
      return Status::InvalidArgument("--peers entry '" + part + "' is not ID=host:port");
    }
    auto id = http::ParseUint64(part.substr(0, eq), "--peers id");
    if (!id.ok() || *id == 0) {
      return Status::InvalidArgument("--peers entry '" + part + "' needs a positive id");
    }
    const std::string addr = part.substr(eq + 1);
    if (auto hp = http::SplitHostPort(addr); !hp.ok()) {
      return hp.status().WithContext("--peers entry '" + part + "'");
    }
    if (!peers.emplace(*id, addr).second) {
      return Status::InvalidArgument("--peers names member " + std::to_string(*id) + " twice");
    }
    for (const auto& [other, a] : peers) {
      if (other != *id && a == addr) {
        return Status::InvalidArgument("--peers gives members " + std::to_string(other) + " and " +
                                       std::to_string(*id) + " the same address");
      }
    }
    pos = end + 1;
  }
  return peers;
}

int Run(int argc, char** argv) {
  CLI::App app{"GojoDB controller: membership, shard map, timestamps, catalog, placement"};
  server::Config config(ControllerSettings());
  if (auto stop = server::ParseCommandLine(&app, &config, argc, argv, "gojodb-controller"))
    return *stop;

  auto id = config.GetUint("id");
  auto join = config.GetBool("join");
  auto tick_ms = config.GetUint("raft.tick_ms");
  auto election_ticks = config.GetUint("raft.election_ticks");
  auto snapshot_entries = config.GetUint("raft.snapshot_entries");
  auto retain_entries = config.GetUint("raft.retain_entries");
  auto window_ms = config.GetUint("tso.window_ms");
  auto placement_ms = config.GetUint("placement.interval_ms");
  auto timeout_ms = config.GetUint("request_timeout_ms");
  for (const Status* s : {&id.status(), &join.status(), &tick_ms.status(), &election_ticks.status(),
                          &snapshot_entries.status(), &retain_entries.status(), &window_ms.status(),
                          &placement_ms.status(), &timeout_ms.status()}) {
    if (!s->ok()) return Fail(2, *s);
  }
  if (*id == 0) return Fail(2, Status::InvalidArgument("--id must be a positive integer"));
  if (*tick_ms == 0 || *election_ticks < 2 || *window_ms == 0 || *placement_ms == 0 ||
      *timeout_ms == 0) {
    return Fail(2, Status::InvalidArgument(
                       "--raft-tick-ms, --tso-window-ms, --placement-interval-ms and "
                       "--request-timeout-ms must be positive; --raft-election-ticks at least 2"));
  }
  for (const char* key : {"http_addr", "grpc_addr"}) {
    if (auto hp = http::SplitHostPort(config.Get(key)); !hp.ok()) {
      return Fail(2, hp.status().WithContext(server::Config::FlagName(key)));
    }
  }
  auto peers = ParsePeers(config.Get("peers"));
  if (!peers.ok()) return Fail(2, peers.status());
  if (!*join && !peers->count(*id)) {
    return Fail(2, Status::InvalidArgument("--peers must include this member (--id " +
                                           std::to_string(*id) + ")"));
  }

  // Before any thread starts: main is the one that receives them.
  server::ShutdownSignals signals;

  const std::string data_dir = config.Get("data_dir");
  auto lock = server::DataDirLock::Acquire(data_dir);
  if (!lock.ok()) return Fail(1, lock.status());
  storage::EngineOptions eo;
  eo.path = data_dir + "/db";
  eo.block_cache_bytes = 32u << 20;
  auto engine = storage::OpenEngine(eo);
  if (!engine.ok()) return Fail(1, engine.status().WithContext("storage"));
  auto sm = controller::ControllerStateMachine::Open(engine->get());
  if (!sm.ok()) return Fail(1, sm.status());

  const std::string grpc_addr = config.Get("grpc_addr");
  const std::string http_addr = config.Get("http_addr");
  std::map<uint64_t, std::string> others = *peers;
  others.erase(*id);
  rpc::TuneGrpcRuntime();
  auto transport = std::make_unique<rpc::GrpcRaftTransport>(others);

  // Messages can arrive before the node exists; they are dropped (Raft retries).
  std::mutex node_mu;
  replication::RaftNode* node_ptr = nullptr;
  rpc::RaftTransportService raft_service([&](consensus::Message m) {
    std::lock_guard lock(node_mu);
    if (node_ptr) node_ptr->Deliver(std::move(m));
  });

  replication::RaftNodeOptions ro;
  ro.id = consensus::NodeId(*id);
  for (const auto& [pid, addr] : *peers) ro.initial_voters.push_back(consensus::NodeId(pid));
  ro.join = *join;
  ro.tick_interval = std::chrono::milliseconds(*tick_ms);
  ro.election_tick = static_cast<int>(*election_ticks);
  ro.snapshot_entries = *snapshot_entries;
  ro.retain_entries = *retain_entries;
  ro.random_seed = *id * 7919 + static_cast<uint64_t>(::getpid());
  auto node = replication::RaftNode::Start(ro, engine->get(), sm->get(), transport.get());
  if (!node.ok()) return Fail(1, node.status().WithContext("raft"));
  {
    std::lock_guard lock(node_mu);
    node_ptr = node->get();
  }
  transport->SetSnapshotReporter([&](uint64_t, uint64_t to, bool ok) {
    std::lock_guard lock(node_mu);
    if (node_ptr) node_ptr->ReportSnapshot(consensus::NodeId(to), ok);
  });

  controller::ControllerOptions co;
  co.id = *id;
  co.grpc_addr = grpc_addr;
  co.http_addr = http_addr;
  co.tso_window_ms = *window_ms;
  co.placement_interval = std::chrono::milliseconds(*placement_ms);
  co.request_timeout = std::chrono::milliseconds(*timeout_ms);
  auto ctl =
      std::make_unique<controller::Controller>(co, node->get(), sm->get(), SystemClock::Default());

  // Members' addresses: --peers is how this member reaches the founding members (it
  // may be a proxy or another interface than theirs); members added later are reached
  // at the address their `controller add` recorded.
  auto resolve = [&, sm_ptr = sm->get()](uint64_t mid) -> std::string {
    if (auto it = peers->find(mid); it != peers->end()) return it->second;
    const auto st = sm_ptr->State();
    if (auto it = st.members.find(mid); it != st.members.end()) return it->second.grpc_addr;
    return "";
  };
  rpc::LeaderChannels leaders(resolve);
  rpc::ControllerServices services(ctl.get(), &leaders);
  grpc::ServerBuilder builder;
  rpc::TuneServerBuilder(&builder);
  int bound_port = 0;
  builder.AddListeningPort(grpc_addr, grpc::InsecureServerCredentials(), &bound_port);
  builder.SetMaxReceiveMessageSize(64 << 20);
  builder.SetMaxSendMessageSize(64 << 20);
  builder.RegisterService(&raft_service);
  services.RegisterOn(&builder);
  std::unique_ptr<grpc::Server> grpc_server = builder.BuildAndStart();
  if (!grpc_server || bound_port == 0) {
    return Fail(1, Status::Unavailable("cannot listen on " + grpc_addr + " (gRPC)"));
  }

  Metrics metrics;
  metrics.AddGaugeSource("raft", [n = node->get()] {
    auto st = n->GetStatus();
    return std::map<std::string, uint64_t>{{"term", st.term},
                                           {"commit_index", st.commit.value()},
                                           {"applied_index", st.applied.value()},
                                           {"snapshot_index", st.snapshot_index.value()},
                                           {"snapshots_installed", st.snapshots_installed},
                                           {"is_leader", st.is_leader ? 1 : 0},
                                           {"voters", st.conf_state.voters.size()}};
  });
  metrics.AddGaugeSource("controller", [s = sm->get()] {
    auto st = s->State();
    return std::map<std::string, uint64_t>{{"storage_nodes", st.nodes.size()},
                                           {"shards", st.shards.size()},
                                           {"map_version", st.map_version},
                                           {"tso_limit_ms", st.tso_limit_ms}};
  });
  server::ControllerHttp http_api(ctl.get(), node->get(), &metrics);
  http::HttpServer http_server(
      [&](std::string_view m, std::string_view t, std::string_view b,
          const http::HeaderLookup& header) {
        return http_api.Handle(m, t, b, !header("X-GojoDB-Forwarded").empty());
      },
      {.max_body_bytes = 1u << 20, .threads = 16});
  if (Status s = http_server.Start(http_addr); !s.ok()) {
    grpc_server->Shutdown();
    return Fail(1, s);
  }

  // Keep the Raft transport's peers in step with the replicated member records.
  std::atomic<bool> stopping{false};
  std::thread members_thread([&, sm_ptr = sm->get()] {
    uint64_t seen = UINT64_MAX;
    while (!stopping) {
      const auto st = sm_ptr->WaitForChange(seen == UINT64_MAX ? 0 : seen, false, 500ms);
      if (st.map_version == seen) continue;
      seen = st.map_version;
      for (const auto& [mid, m] : st.members) {
        if (mid != *id && !m.grpc_addr.empty() && !peers->count(mid)) {
          transport->SetPeer(mid, m.grpc_addr);
        }
      }
    }
  });

  spdlog::info("gojodb-controller {} id={} serving data_dir={} http={} grpc={} peers={}{}",
               kVersion, *id, data_dir, http_addr, grpc_addr, config.Get("peers"),
               *join ? " (joining)" : "");

  signals.Wait();
  stopping = true;
  members_thread.join();
  http_server.Stop();
  grpc_server->Shutdown(std::chrono::system_clock::now() + 1s);
  ctl.reset();
  {
    std::lock_guard lock(node_mu);
    node_ptr = nullptr;
  }
  transport->SetSnapshotReporter(nullptr);
  node->reset();
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
