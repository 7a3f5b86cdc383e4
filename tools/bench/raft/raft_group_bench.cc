// gojodb-raft-bench: a 3-member Raft group on loopback with fsync (each member its own
// RocksDB, gRPC transport between them, all in this process), P concurrent proposers.
// Reports committed proposals per second and commit latency percentiles, per P, with
// replication batching on (1 MiB per append message) or off (one entry per message).
//   gojodb-raft-bench [--proposers 1,16,128] [--seconds 5] [--payload 100] [--no-batching]

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <thread>

#include "api/grpc/raft_transport.h"
#include "tests/integration/process.h"

namespace {

using namespace gojodb;
using namespace std::chrono_literals;
using gojodb::testing::FreePort;

class CountingMachine final : public replication::StateMachine {
 public:
  Status Apply(consensus::LogIndex index, std::string_view) override {
    applied_.store(index.value());
    return Status::OK();
  }
  consensus::LogIndex Applied() const override { return consensus::LogIndex(applied_.load()); }

 private:
  std::atomic<uint64_t> applied_{0};
};

struct Member {
  std::unique_ptr<storage::Engine> engine;
  CountingMachine sm;
  std::unique_ptr<rpc::GrpcRaftTransport> transport;
  std::mutex mu;
  replication::RaftNode* node = nullptr;
  std::unique_ptr<rpc::RaftTransportService> service;
  std::unique_ptr<grpc::Server> server;
  std::unique_ptr<replication::RaftNode> owned;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"gojodb-raft-bench: a 3-member Raft group over loopback gRPC with fsync"};
  std::vector<int> proposers = {1, 16, 128};
  int seconds = 5;
  size_t payload = 100;
  bool no_batching = false;
  app.add_option("--proposers", proposers)->delimiter(',');
  app.add_option("--seconds", seconds);
  app.add_option("--payload", payload);
  app.add_flag("--no-batching", no_batching);
  CLI11_PARSE(app, argc, argv);

  auto dir =
      std::filesystem::temp_directory_path() / ("gojodb-raft-bench-" + std::to_string(::getpid()));
  std::map<uint64_t, int> ports;
  for (uint64_t id = 1; id <= 3; ++id) ports[id] = FreePort();
  std::map<uint64_t, std::unique_ptr<Member>> members;
  for (uint64_t id = 1; id <= 3; ++id) {
    auto m = std::make_unique<Member>();
    Member* raw = m.get();
    m->service = std::make_unique<rpc::RaftTransportService>([raw](consensus::Message msg) {
      std::lock_guard lock(raw->mu);
      if (raw->node) raw->node->Deliver(std::move(msg));
    });
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:" + std::to_string(ports[id]), grpc::InsecureServerCredentials());
    b.RegisterService(m->service.get());
    m->server = b.BuildAndStart();
    std::map<uint64_t, std::string> peers;
    for (uint64_t p = 1; p <= 3; ++p) {
      if (p != id) peers[p] = "127.0.0.1:" + std::to_string(ports[p]);
    }
    m->transport = std::make_unique<rpc::GrpcRaftTransport>(peers);
    storage::EngineOptions eo;
    eo.path = (dir / std::to_string(id)).string();
    std::filesystem::create_directories(eo.path);
    m->engine = std::move(storage::OpenEngine(eo)).value();
    replication::RaftNodeOptions o;
    o.id = consensus::NodeId(id);
    o.initial_voters = {consensus::NodeId(1), consensus::NodeId(2), consensus::NodeId(3)};
    o.random_seed = id;
    o.max_size_per_msg = no_batching ? 1 : (1 << 20);
    auto n = replication::RaftNode::Start(o, m->engine.get(), &m->sm, m->transport.get());
    if (!n.ok()) {
      std::fprintf(stderr, "start: %s\n", n.status().ToString().c_str());
      return 1;
    }
    m->owned = std::move(n).value();
    std::lock_guard lock(m->mu);
    m->node = m->owned.get();
    members[id] = std::move(m);
  }
  // Propose on the leader, as a client that knows it would.
  uint64_t leader = 0;
  for (int i = 0; i < 500 && leader == 0; ++i) {
    leader = members[1]->owned->Leader().value();
    std::this_thread::sleep_for(10ms);
  }
  if (leader == 0) {
    std::fprintf(stderr, "no leader\n");
    return 1;
  }
  replication::RaftNode* node = members[leader]->owned.get();
  std::printf("3-member group, fsync on, payload %zu B, batching %s, %d s per run\n", payload,
              no_batching ? "off (1 entry per message)" : "on (1 MiB per message)", seconds);
  std::printf("%10s %14s %10s %10s %10s %8s\n", "proposers", "commits/s", "p50_us", "p99_us",
              "p99.9_us", "errors");
  const std::string data(payload, 'x');
  for (int p : proposers) {
    std::atomic<bool> stop{false};
    std::mutex mu;
    std::vector<int64_t> lat;
    std::atomic<uint64_t> errors{0};
    std::vector<std::thread> threads;
    auto start = std::chrono::steady_clock::now();
    for (int t = 0; t < p; ++t) {
      threads.emplace_back([&] {
        std::vector<int64_t> mine;
        while (!stop) {
          auto t0 = std::chrono::steady_clock::now();
          Status s = node->Propose(data, 5s);
          auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                        std::chrono::steady_clock::now() - t0)
                        .count();
          if (s.ok())
            mine.push_back(us);
          else
            ++errors;
        }
        std::lock_guard l(mu);
        lat.insert(lat.end(), mine.begin(), mine.end());
      });
    }
    std::this_thread::sleep_for(std::chrono::seconds(seconds));
    stop = true;
    for (auto& t : threads) t.join();
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::sort(lat.begin(), lat.end());
    auto pct = [&](double q) {
      return lat.empty() ? 0 : lat[std::min(lat.size() - 1, static_cast<size_t>(q * lat.size()))];
    };
    std::printf("%10d %14.0f %10ld %10ld %10ld %8lu\n", p, lat.size() / secs, pct(0.5), pct(0.99),
                pct(0.999), static_cast<unsigned long>(errors.load()));
  }
  for (auto& [id, m] : members) {
    {
      std::lock_guard lock(m->mu);
      m->node = nullptr;
    }
    m->server->Shutdown(std::chrono::system_clock::now() + 200ms);
    m->owned.reset();
    m->transport.reset();
  }
  members.clear();
  std::filesystem::remove_all(dir);
  return 0;
}
