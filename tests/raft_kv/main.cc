// gojodb-raft-kv: a small replicated key-value service for testing core/consensus and
// core/replication with real processes. Each process is one Raft member (RocksDB log,
// gRPC transport); every operation, reads included, goes through the log, so every
// answer is linearizable. HTTP:
//   PUT /kv/{key}  (body: value)   200 once applied; 503 no leader; 504 outcome unknown
//   GET /kv/{key}                  200 value | 404; read through the log
//   GET /status                    {"id":N,"leader":L}
// Flags: --id N --data-dir DIR --raft-addr H:P --http-addr H:P --peers 1=H:P,2=H:P,...
#include <httplib.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <map>
#include <mutex>

#include "api/grpc/raft_transport.h"
#include "core/replication/raft_node.h"

namespace {

using namespace gojodb;
using consensus::LogIndex;

// The replicated map. Commands: 'P' key\0value, 'G' key (a read marker). Kept in memory
// and rebuilt by replaying the durable log on restart.
class KvMachine final : public replication::StateMachine {
 public:
  Status Apply(LogIndex index, std::string_view data) override {
    std::lock_guard lock(mu_);
    applied_ = index;
    if (!data.empty() && data[0] == 'P') {
      auto sep = data.find('\0', 1);
      if (sep != std::string_view::npos)
        map_[std::string(data.substr(1, sep - 1))] = std::string(data.substr(sep + 1));
    }
    return Status::OK();
  }
  LogIndex Applied() const override {
    std::lock_guard lock(mu_);
    return applied_;
  }
  std::optional<std::string> Get(const std::string& k) const {
    std::lock_guard lock(mu_);
    auto it = map_.find(k);
    if (it == map_.end()) return std::nullopt;
    return it->second;
  }

 private:
  mutable std::mutex mu_;
  LogIndex applied_;
  std::map<std::string, std::string> map_;
};

int StatusToHttp(const Status& s) {
  if (s.code() == StatusCode::kUnavailable) return 503;
  if (s.code() == StatusCode::kDeadlineExceeded) return 504;
  return 500;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"gojodb-raft-kv: a replicated key-value test service"};
  uint64_t id = 0;
  std::string data_dir, raft_addr, http_addr, peers_flag;
  app.add_option("--id", id)->required();
  app.add_option("--data-dir", data_dir)->required();
  app.add_option("--raft-addr", raft_addr)->required();
  app.add_option("--http-addr", http_addr)->required();
  app.add_option("--peers", peers_flag)->required();
  CLI11_PARSE(app, argc, argv);

  std::map<uint64_t, std::string> peers;
  std::vector<consensus::NodeId> voters;
  for (size_t pos = 0; pos < peers_flag.size();) {
    size_t end = peers_flag.find(',', pos);
    if (end == std::string::npos) end = peers_flag.size();
    std::string part = peers_flag.substr(pos, end - pos);
    size_t eq = part.find('=');
    if (eq == std::string::npos) {
      std::fprintf(stderr, "gojodb-raft-kv: bad --peers entry '%s'\n", part.c_str());
      return 2;
    }
    uint64_t pid = std::stoull(part.substr(0, eq));
    voters.push_back(consensus::NodeId(pid));
    if (pid != id) peers[pid] = part.substr(eq + 1);
    pos = end + 1;
  }

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  storage::EngineOptions eo;
  eo.path = data_dir;
  auto engine = storage::OpenEngine(eo);
  if (!engine.ok()) {
    std::fprintf(stderr, "gojodb-raft-kv: %s\n", engine.status().ToString().c_str());
    return 1;
  }
  KvMachine sm;
  rpc::GrpcRaftTransport transport(peers);
  std::mutex node_mu;
  replication::RaftNode* node_ptr = nullptr;
  rpc::RaftTransportService service([&](consensus::Message m) {
    std::lock_guard lock(node_mu);
    if (node_ptr) node_ptr->Deliver(std::move(m));
  });
  grpc::ServerBuilder builder;
  int bound = 0;
  builder.AddListeningPort(raft_addr, grpc::InsecureServerCredentials(), &bound);
  builder.RegisterService(&service);
  auto server = builder.BuildAndStart();
  if (!server || bound == 0) {
    std::fprintf(stderr, "gojodb-raft-kv: cannot listen on %s\n", raft_addr.c_str());
    return 1;
  }
  replication::RaftNodeOptions o;
  o.id = consensus::NodeId(id);
  o.initial_voters = voters;
  o.random_seed = id * 7919 + static_cast<uint64_t>(::getpid());
  auto node = replication::RaftNode::Start(o, engine->get(), &sm, &transport);
  if (!node.ok()) {
    std::fprintf(stderr, "gojodb-raft-kv: %s\n", node.status().ToString().c_str());
    return 1;
  }
  {
    std::lock_guard lock(node_mu);
    node_ptr = node->get();
  }

  httplib::Server http;
  http.Put(R"(/kv/(.+))", [&](const httplib::Request& req, httplib::Response& res) {
    std::string cmd = "P" + req.matches[1].str() + std::string(1, '\0') + req.body;
    Status s = (*node)->Propose(cmd, std::chrono::milliseconds(1000));
    res.status = s.ok() ? 200 : StatusToHttp(s);
  });
  http.Get(R"(/kv/(.+))", [&](const httplib::Request& req, httplib::Response& res) {
    // A read is a log entry too: once it applied here, this member has applied every
    // write committed before the read began.
    Status s = (*node)->Propose("G", std::chrono::milliseconds(1000));
    if (!s.ok()) {
      res.status = StatusToHttp(s);
      return;
    }
    auto v = sm.Get(req.matches[1].str());
    res.status = v ? 200 : 404;
    if (v) res.set_content(*v, "text/plain");
  });
  http.Get("/status", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content("{\"id\":" + std::to_string(id) +
                        ",\"leader\":" + std::to_string((*node)->Leader().value()) + "}",
                    "application/json");
  });
  auto colon = http_addr.rfind(':');
  if (!http.bind_to_port(http_addr.substr(0, colon), std::stoi(http_addr.substr(colon + 1)))) {
    std::fprintf(stderr, "gojodb-raft-kv: cannot listen on %s\n", http_addr.c_str());
    return 1;
  }
  std::thread http_thread([&] { http.listen_after_bind(); });
  int sig = 0;
  sigwait(&signals, &sig);
  http.stop();
  http_thread.join();
  {
    std::lock_guard lock(node_mu);
    node_ptr = nullptr;
  }
  node->reset();
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(200));
  return 0;
}
