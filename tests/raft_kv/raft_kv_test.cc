// Real processes: three gojodb-raft-kv members on loopback. Clients read and write a
// few keys through random members while the leader is SIGKILLed and restarted again and
// again; every key's history must be linearizable, and every acknowledged write is
// thereby never lost. GOJODB_RAFT_KV_KILLS (default 10) sets the number of kills.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "tests/integration/process.h"
#include "tests/linearizability/checker.h"

namespace gojodb::testing {
namespace {

// One operation as the clients record it.
struct RegisterOp {
  static constexpr int64_t kUnknown = std::numeric_limits<int64_t>::max();
  bool is_write = false;
  std::optional<std::string> value;  // written, or read (nullopt: absent)
  int64_t call = 0;
  int64_t ret = kUnknown;  // kUnknown: the outcome was never learnt
};

int64_t Now() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

class RaftKvCluster {
 public:
  explicit RaftKvCluster(std::string dir) : dir_(std::move(dir)) {
    for (int id = 1; id <= 3; ++id) {
      raft_port_[id] = FreePort();
      http_port_[id] = FreePort();
    }
  }
  void Start(int id) {
    std::string peers;
    for (int p = 1; p <= 3; ++p) {
      peers +=
          (p > 1 ? "," : "") + std::to_string(p) + "=127.0.0.1:" + std::to_string(raft_port_[p]);
    }
    procs_[id] = std::make_unique<Process>(
        std::vector<std::string>{BinDir() + "/gojodb-raft-kv", "--id", std::to_string(id),
                                 "--data-dir", dir_ + "/n" + std::to_string(id), "--raft-addr",
                                 "127.0.0.1:" + std::to_string(raft_port_[id]), "--http-addr",
                                 "127.0.0.1:" + std::to_string(http_port_[id]), "--peers", peers},
        dir_ + "/n" + std::to_string(id) + ".log");
  }
  void Kill(int id) {
    procs_[id]->Signal(SIGKILL);
    procs_[id]->Wait();
  }
  // The leader as some member sees it, or 0.
  int Leader() {
    for (int id = 1; id <= 3; ++id) {
      if (!procs_[id] || !procs_[id]->Running()) continue;
      httplib::Client c("127.0.0.1", http_port_[id]);
      c.set_connection_timeout(0, 200000);
      auto r = c.Get("/status");
      if (!r || r->status != 200) continue;
      auto pos = r->body.find("\"leader\":");
      int leader = std::atoi(r->body.c_str() + pos + 9);
      if (leader != 0 && procs_[leader] && procs_[leader]->Running()) return leader;
    }
    return 0;
  }
  int http_port(int id) const { return http_port_.at(id); }
  std::string Logs() {
    std::string out;
    for (auto& [id, p] : procs_) out += "--- n" + std::to_string(id) + "\n" + (p ? p->Log() : "");
    return out;
  }

 private:
  std::string dir_;
  std::map<int, int> raft_port_, http_port_;
  std::map<int, std::unique_ptr<Process>> procs_;
};

TEST(RaftKvTest, LinearizableWhileTheLeaderIsKilledRepeatedly) {
  const char* env = std::getenv("GOJODB_RAFT_KV_KILLS");
  const int kills = env ? std::atoi(env) : 10;
  const std::string dir = TempDir("raftkv");
  RaftKvCluster cluster(dir);
  for (int id = 1; id <= 3; ++id) cluster.Start(id);

  // Enough keys, and paced clients, that the histories span every kill while each key's
  // history stays within the checker's 64 operations.
  const std::vector<std::string> keys = {"a", "b", "c", "d", "e", "f", "g", "h"};
  std::mutex mu;
  std::map<std::string, std::vector<RegisterOp>> history;
  std::atomic<bool> stop{false};
  std::atomic<int> acked_writes{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 3; ++t) {
    clients.emplace_back([&, t] {
      std::mt19937 rng(t + 1);
      int seq = 0;
      while (!stop) {
        const std::string key = keys[rng() % keys.size()];
        {
          std::lock_guard l(mu);
          if (history[key].size() >= 56) {  // the checker's bound per key
            bool all_full = true;
            for (auto& k : keys) all_full = all_full && history[k].size() >= 56;
            if (all_full) return;
            continue;
          }
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(15 + rng() % 20));
        httplib::Client c("127.0.0.1", cluster.http_port(1 + rng() % 3));
        c.set_connection_timeout(0, 300000);
        c.set_read_timeout(3, 0);
        RegisterOp op;
        op.call = Now();
        if (rng() % 2) {
          op.is_write = true;
          op.value = "c" + std::to_string(t) + "-" + std::to_string(seq++);
          auto r = c.Put("/kv/" + key, *op.value, "text/plain");
          if (r && r->status == 200) {
            op.ret = Now();
            ++acked_writes;
          }  // else: outcome unknown, ret stays kUnknown
        } else {
          auto r = c.Get("/kv/" + key);
          if (!r || (r->status != 200 && r->status != 404)) {
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
            continue;  // a failed read has no effect
          }
          op.ret = Now();
          if (r->status == 200) op.value = r->body;
        }
        std::lock_guard l(mu);
        history[key].push_back(op);
      }
    });
  }

  for (int k = 0; k < kills; ++k) {
    int leader = 0;
    for (int i = 0; i < 300 && leader == 0; ++i) {
      leader = cluster.Leader();
      if (leader == 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ASSERT_NE(leader, 0) << "no leader emerged\n" << cluster.Logs();
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    cluster.Kill(leader);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    cluster.Start(leader);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  stop = true;
  for (auto& c : clients) c.join();

  // A final read of every key through every member, after everything settled.
  for (int id = 1; id <= 3; ++id) {
    for (const auto& key : keys) {
      httplib::Client c("127.0.0.1", cluster.http_port(id));
      c.set_read_timeout(3, 0);
      for (int attempt = 0; attempt < 100; ++attempt) {
        RegisterOp op;
        op.call = Now();
        auto r = c.Get("/kv/" + key);
        if (r && (r->status == 200 || r->status == 404)) {
          op.ret = Now();
          if (r->status == 200) op.value = r->body;
          if (history[key].size() < 64) history[key].push_back(op);
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    }
  }

  std::printf("raft-kv: %d leader kills, %d acknowledged writes, operations per key:", kills,
              acked_writes.load());
  for (const auto& key : keys) std::printf(" %s=%zu", key.c_str(), history[key].size());
  std::printf("\n");
  EXPECT_GT(acked_writes.load(), 10) << cluster.Logs();
  std::vector<linearizability::Op> all;
  for (const auto& [key, ops] : history) {
    for (const auto& r : ops) {
      linearizability::Op op;
      op.kind = r.is_write ? linearizability::Op::Kind::kWrite : linearizability::Op::Kind::kRead;
      op.key = key;
      op.call = r.call;
      op.ret = r.ret;
      op.unknown = r.ret == RegisterOp::kUnknown;
      op.found = r.value.has_value();
      op.value = r.value.value_or("");
      all.push_back(std::move(op));
    }
  }
  const auto verdict = linearizability::Check(all);
  EXPECT_TRUE(verdict.linearizable && !verdict.gave_up)
      << "key " << verdict.key << ": " << verdict.explanation;
  for (int id = 1; id <= 3; ++id) cluster.Kill(id);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace gojodb::testing
