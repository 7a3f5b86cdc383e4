// The cluster under faults, driven through scripts/cluster.sh (real processes, a real
// network partition through gojodb-netproxy) and checked through the gateway's HTTP API:
//
// - Linearizability: concurrent clients read, write and compare-and-set a few keys while
//   a nemesis SIGKILLs, SIGSTOPs and partitions storage nodes and the controller leader,
//   and shards split; tests/linearizability's checker must accept every key's history.
//   An inserter writes fresh keys meanwhile; every insert the gateway acknowledged must
//   be readable at the end (no lost writes).
// - Repair: a storage node killed for good; every shard is back to three replicas on
//   live nodes, with a leader, and the data is all there.
// - Balance: a fourth node joins a loaded cluster; replica and leader counts converge to
//   within one of even.
// - Bank: transfers between accounts spread over several shards, as transactions through
//   two gateways, while a nemesis SIGKILLs and SIGSTOPs gateways (coordinators in the
//   middle of commits), storage nodes and the controller leader and partitions them;
//   every snapshot of all balances, and the final one, sums to the starting total. The
//   GC runs throughout (a 1 s TTL), resolving what killed coordinators left and moving
//   its safe point past the faults.
//
// Bounded for CI. GOJODB_NEMESIS_SECONDS (default 20) and GOJODB_NEMESIS_SEED (default:
// from the clock, printed) lengthen or replay the nemesis run; `--long` runs it for ten
// minutes (build/bin/cluster_faults_test --long --gtest_filter='*Nemesis*').
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <thread>
#include <vector>

#include "tests/integration/process.h"
#include "tests/linearizability/checker.h"

namespace gojodb::testing {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
using linearizability::Op;

int64_t NowNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

uint64_t EnvOr(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::strtoull(v, nullptr, 10) : fallback;
}

struct Endpoint {
  std::string host;
  int http = 0;
  int grpc = 0;
};

// One cluster brought up by scripts/cluster.sh in a temporary directory.
class ScriptCluster {
 public:
  ~ScriptCluster() {
    if (up_) Run({"down"});
    if (::testing::Test::HasFailure()) {
      // Every process's whole log stays for the post-mortem.
      std::fprintf(stderr, "cluster logs kept in %s/logs\n", dir_.c_str());
    } else {
      std::filesystem::remove_all(dir_);
    }
  }

  bool Up(int storage, std::string* why, int gateways = 1) {
    ::setenv("GOJODB_BIN", BinDir().c_str(), 1);
    dir_ = TempDir("faults");
    std::filesystem::remove_all(dir_);  // cluster.sh wants to create it
    std::mt19937 rng(static_cast<uint32_t>(NowNanos()));
    for (int attempt = 0; attempt < 4; ++attempt) {
      const int base = 20000 + static_cast<int>(rng() % 300) * 40;
      auto r = RunCommand(
          {script_, "up", "--controllers", "3", "--storage", std::to_string(storage), "--api",
           std::to_string(gateways), "--dir", dir_, "--base-port", std::to_string(base)},
          "", 120000);
      if (r.status == 0) {
        up_ = true;
        Parse(r.out);
        return true;
      }
      *why = r.out + r.err;
      std::filesystem::remove_all(dir_);
      // A port taken by another process, seen by cluster.sh's check or only when a
      // process listens (taken between the two): another range.
      const bool taken = why->find("in use") != std::string::npos ||
                         why->find("cannot listen") != std::string::npos;
      if (!taken) return false;
    }
    return false;
  }

  RunResult Run(std::vector<std::string> args, int timeout_ms = 60000) {
    args.insert(args.begin(), script_);
    args.push_back("--dir");
    args.push_back(dir_);
    return RunCommand(args, "", timeout_ms);
  }
  // cluster.sh's sub-commands take the directory first or last; keep one form.
  RunResult Do(const std::string& cmd, const std::vector<std::string>& names = {}) {
    std::vector<std::string> args = {cmd};
    args.insert(args.end(), names.begin(), names.end());
    return Run(args);
  }

  const Endpoint& At(const std::string& name) const { return procs_.at(name); }
  std::string dir() const { return dir_; }

  // The controllers' view (any member answers /v1/cluster/status by forwarding).
  json Status() const {
    for (int i = 1; i <= 3; ++i) {
      const auto& e = procs_.at("controller-" + std::to_string(i));
      httplib::Client c(e.host, e.http);
      c.set_connection_timeout(1, 0);
      c.set_read_timeout(3, 0);
      auto r = c.Get("/v1/cluster/status");
      if (r && r->status == 200) {
        auto j = json::parse(r->body, nullptr, false);
        if (!j.is_discarded()) return j;
      }
    }
    return json();
  }

  // Runs the CLI against a controller (settings and the like).
  RunResult Cli(std::vector<std::string> args) {
    const auto& e = procs_.at("controller-1");
    std::vector<std::string> argv = {BinDir() + "/gojodb", "--addr",
                                     e.host + ":" + std::to_string(e.grpc)};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv);
  }

  std::string ControllerAddrs() const {
    std::string out;
    for (int i = 1; i <= 3; ++i) {
      const auto& e = procs_.at("controller-" + std::to_string(i));
      out += (out.empty() ? "" : ",") + e.host + ":" + std::to_string(e.grpc);
    }
    return out;
  }

  // The last 25 lines of every process's log.
  std::string Logs() const {
    std::string out;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(dir_ + "/logs", ec)) {
      std::ifstream f(entry.path());
      std::vector<std::string> lines;
      for (std::string line; std::getline(f, line);) lines.push_back(std::move(line));
      out += "--- " + entry.path().filename().string() + "\n";
      for (size_t i = lines.size() > 25 ? lines.size() - 25 : 0; i < lines.size(); ++i) {
        out += lines[i] + "\n";
      }
    }
    return out;
  }

 private:
  void Parse(const std::string& out) {
    std::istringstream in(out);
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream w(line);
      std::string name, pid, http, grpc;
      w >> name >> pid >> http >> grpc;
      if (http.rfind("http=", 0) != 0) continue;
      auto port_of = [](const std::string& hp) {
        const auto colon = hp.rfind(':');
        return colon == std::string::npos ? 0 : std::atoi(hp.c_str() + colon + 1);
      };
      Endpoint e;
      const std::string h = http.substr(5);
      e.host = h.substr(0, h.rfind(':'));
      e.http = port_of(h);
      if (grpc.rfind("grpc=", 0) == 0) e.grpc = port_of(grpc.substr(5));
      procs_[name] = e;
    }
  }

  const std::string script_ = std::string(GOJODB_SOURCE_DIR) + "/scripts/cluster.sh";
  std::string dir_;
  bool up_ = false;
  std::map<std::string, Endpoint> procs_;
};

// The gateway's HTTP API as the clients use it.
class Http {
 public:
  explicit Http(const Endpoint& e) : c_(e.host, e.http) {
    c_.set_connection_timeout(2, 0);
    c_.set_read_timeout(15, 0);
    c_.set_write_timeout(5, 0);
  }
  // status 0: no answer.
  struct Answer {
    int status = 0;
    std::string body;
    uint64_t version = 0;
  };
  Answer Put(const std::string& key, const std::string& value, std::optional<uint64_t> if_version) {
    std::string path = "/v1/collections/default/keys/" + key;
    if (if_version) path += "?if_version=" + std::to_string(*if_version);
    auto r = c_.Put(path, value, "application/octet-stream");
    Answer a;
    if (!r) return a;
    a.status = r->status;
    a.body = r->body;
    if (r->status == 200) {
      auto j = json::parse(r->body, nullptr, false);
      if (j.is_object() && j.contains("version")) a.version = j["version"].get<uint64_t>();
    }
    return a;
  }
  // POST of a JSON body.
  Answer Post(const std::string& path, const json& body) {
    auto r = c_.Post(path, body.dump(), "application/json");
    Answer a;
    if (!r) return a;
    a.status = r->status;
    a.body = r->body;
    return a;
  }
  Answer Get(const std::string& key) {
    auto r = c_.Get("/v1/collections/default/keys/" + key);
    Answer a;
    if (!r) return a;
    a.status = r->status;
    a.body = r->body;
    if (r->status == 200)
      a.version = std::strtoull(r->get_header_value("X-GojoDB-Version").c_str(), nullptr, 10);
    return a;
  }

 private:
  httplib::Client c_;
};

TEST(ClusterFaults, LinearizableAndNothingLostUnderANemesis) {
  ScriptCluster cluster;
  std::string why;
  ASSERT_TRUE(cluster.Up(3, &why)) << why;
  // Small shards, so that splits happen during the run.
  auto set = cluster.Cli({"settings", "set", "shard_split_bytes=65536"});
  ASSERT_EQ(set.status, 0) << set.out << set.err;

  const uint64_t seconds = EnvOr("GOJODB_NEMESIS_SECONDS", 20);
  const uint64_t seed = EnvOr("GOJODB_NEMESIS_SEED", static_cast<uint64_t>(NowNanos()) % 100000);
  std::printf("nemesis: seed %llu, %llu s\n", static_cast<unsigned long long>(seed),
              static_cast<unsigned long long>(seconds));

  // Enough keys, and a cap on each key's operations, that every key's history stays
  // small enough to check quickly.
  std::vector<std::string> keys;
  for (int i = 0; i < 16; ++i) keys.push_back("k" + std::to_string(i));
  constexpr size_t kMaxOpsPerKey = 120;
  std::map<std::string, size_t> ops_per_key;
  const std::string padding(900, 'p');  // values of ~1 KB make the shards grow
  std::mutex mu;
  std::vector<Op> history;
  std::atomic<bool> stop{false};
  std::vector<std::thread> clients;
  for (int c = 0; c < 4; ++c) {
    clients.emplace_back([&, c] {
      std::mt19937 rng(static_cast<uint32_t>(seed * 31 + c));
      Http http(cluster.At("api-1"));
      std::map<std::string, uint64_t> seen;  // key -> a version this client read
      int seq = 0;
      // Paced, so the capped histories span the whole run rather than its first seconds.
      const auto pace =
          std::chrono::milliseconds(seconds * 1000 * 4 / (keys.size() * kMaxOpsPerKey));
      while (!stop) {
        std::this_thread::sleep_for(pace);
        Op op;
        op.key = keys[rng() % keys.size()];
        op.client = c;
        {
          std::lock_guard lock(mu);
          if (ops_per_key[op.key] >= kMaxOpsPerKey) {
            bool all_full = true;
            for (const auto& k : keys) all_full = all_full && ops_per_key[k] >= kMaxOpsPerKey;
            if (all_full) {
              std::this_thread::sleep_for(50ms);  // the history is full; the inserter goes on
            }
            continue;
          }
        }
        const int dice = static_cast<int>(rng() % 10);
        op.call = NowNanos();
        if (dice < 4) {
          auto a = http.Get(op.key);
          op.ret = NowNanos();
          if (a.status != 200 && a.status != 404) continue;  // a failed read did nothing
          op.found = a.status == 200;
          op.value = a.status == 200 ? a.body : "";
          op.version = a.version;
          if (op.found) seen[op.key] = a.version;
        } else {
          op.kind = dice < 7 ? Op::Kind::kWrite : Op::Kind::kCas;
          op.value = "c" + std::to_string(c) + "-" + std::to_string(seq++) + "-" + padding;
          std::optional<uint64_t> if_version;
          if (op.kind == Op::Kind::kCas) {
            op.expected = seen.count(op.key) ? seen[op.key] : 0;
            if_version = op.expected;
          }
          auto a = http.Put(op.key, op.value, if_version);
          if (a.status == 200) {
            op.ret = NowNanos();
            op.version = a.version;
            op.ok = true;
          } else if (a.status == 409 && op.kind == Op::Kind::kCas) {
            op.ret = NowNanos();
            op.ok = false;
          } else if (a.status >= 400 && a.status < 500) {
            ADD_FAILURE() << "unexpected answer " << a.status << ": " << a.body;
            continue;
          } else {
            op.unknown = true;  // 5xx or no answer: it may or may not have applied
          }
        }
        std::lock_guard lock(mu);
        ops_per_key[op.key]++;
        history.push_back(std::move(op));
      }
    });
  }
  // Fresh keys, each written once: every acknowledged one must survive.
  std::vector<std::string> inserted;
  std::thread inserter([&] {
    Http http(cluster.At("api-1"));
    for (int n = 0; !stop; ++n) {
      const std::string key = "ins-" + std::to_string(n);
      auto a = http.Put(key, "v" + std::to_string(n), std::nullopt);
      if (a.status == 200) {
        std::lock_guard lock(mu);
        inserted.push_back(key);
      }
    }
  });

  // The nemesis.
  std::mt19937 rng(static_cast<uint32_t>(seed));
  std::vector<std::string> actions;
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  auto storage = [&] { return "storage-" + std::to_string(1 + rng() % 3); };
  auto controller_leader = [&]() -> std::string {
    auto st = cluster.Status();
    if (st.is_object() && st.contains("leader") && st["leader"].get<uint64_t>() != 0) {
      return "controller-" + std::to_string(st["leader"].get<uint64_t>());
    }
    return "controller-" + std::to_string(1 + rng() % 3);
  };
  // A harness command that must work; its output says why when it does not.
  auto must = [&](const std::string& cmd, const std::vector<std::string>& names = {}) {
    auto r = cluster.Do(cmd, names);
    EXPECT_EQ(r.status, 0) << cmd << " failed: " << r.out << r.err << "\n" << cluster.Logs();
  };
  auto pause = [&](int min_ms, int max_ms) {
    std::this_thread::sleep_for(std::chrono::milliseconds(min_ms + rng() % (max_ms - min_ms)));
  };
  while (std::chrono::steady_clock::now() < end) {
    const int action = static_cast<int>(rng() % 5);
    std::string victim;
    if (action == 0) {
      victim = storage();
      must("kill", {victim});
      pause(500, 2000);
      must("restart", {victim});
      actions.push_back("kill+restart " + victim);
    } else if (action == 1) {
      victim = storage();
      must("stop", {victim});
      pause(500, 2500);
      must("cont", {victim});
      actions.push_back("stop/cont " + victim);
    } else if (action == 2) {
      victim = storage();
      std::string others;
      for (int i = 1; i <= 3; ++i) {
        const std::string n = "storage-" + std::to_string(i);
        if (n != victim) others += (others.empty() ? "" : ",") + n;
      }
      must("partition", {victim, others});
      pause(1000, 3000);
      must("heal");
      actions.push_back("partition " + victim + " | " + others);
    } else if (action == 3) {
      victim = controller_leader();
      must("kill", {victim});
      pause(500, 1500);
      must("restart", {victim});
      actions.push_back("kill+restart " + victim);
    } else {
      victim = controller_leader();
      std::string others;
      for (int i = 1; i <= 3; ++i) {
        const std::string n = "controller-" + std::to_string(i);
        if (n != victim) others += (others.empty() ? "" : ",") + n;
      }
      must("partition", {victim, others});
      pause(1000, 3000);
      must("heal");
      actions.push_back("partition " + victim + " | " + others);
    }
    pause(300, 1000);
  }
  // Let the last fault heal, keep the clients going a little, then stop them.
  std::this_thread::sleep_for(2s);
  stop = true;
  for (auto& t : clients) t.join();
  inserter.join();

  // A final read of every key, once the cluster serves again.
  Http http(cluster.At("api-1"));
  for (const auto& key : keys) {
    bool done = false;
    for (int attempt = 0; attempt < 60 && !done; ++attempt) {
      Op op;
      op.key = key;
      op.client = 99;
      op.call = NowNanos();
      auto a = http.Get(key);
      op.ret = NowNanos();
      if (a.status == 200 || a.status == 404) {
        op.found = a.status == 200;
        op.value = op.found ? a.body : "";
        op.version = a.version;
        history.push_back(op);
        done = true;
      } else {
        std::this_thread::sleep_for(500ms);
      }
    }
    EXPECT_TRUE(done) << "key " << key << " never became readable again\n" << cluster.Logs();
  }

  size_t unknown = 0, writes_ok = 0;
  for (const auto& op : history) {
    unknown += op.unknown ? 1 : 0;
    writes_ok += op.kind != Op::Kind::kRead && op.ok && !op.unknown ? 1 : 0;
  }
  std::printf(
      "nemesis: %zu operations (%zu acknowledged writes, %zu unknown outcomes), %zu "
      "inserts; faults:",
      history.size(), writes_ok, unknown, inserted.size());
  for (const auto& a : actions) std::printf(" [%s]", a.c_str());
  std::printf("\n");
  EXPECT_GT(writes_ok, 20u) << "too little got through to mean anything\n" << cluster.Logs();
  EXPECT_GT(inserted.size(), 20u);

  const auto verdict = linearizability::Check(history);
  EXPECT_TRUE(verdict.linearizable && !verdict.gave_up)
      << "seed " << seed << ", key " << verdict.key << ": " << verdict.explanation;

  // No lost writes: every acknowledged insert reads back with its value.
  size_t lost = 0;
  for (size_t i = 0; i < inserted.size(); ++i) {
    Http::Answer a;
    for (int attempt = 0; attempt < 20; ++attempt) {
      a = http.Get(inserted[i]);
      if (a.status == 200 || a.status == 404) break;
      std::this_thread::sleep_for(250ms);
    }
    if (a.status != 200) {
      ++lost;
      ADD_FAILURE() << "acknowledged insert " << inserted[i] << " reads " << a.status;
    }
  }
  EXPECT_EQ(lost, 0u);
  auto st = cluster.Status();
  std::printf("nemesis: %zu shards at the end\n", st.is_object() ? st["shards"].size() : 0);
}

// Bank: N accounts on several shards, concurrent transfers (one-shot transactions
// conditioned on the versions just read) through two gateways, concurrent snapshot
// reads of every balance, while a nemesis kills and stops gateways mid-commit, storage
// nodes and the controller leader, and partitions storage nodes. Every total observed
// and the final one equal the starting total; GOJODB_NEMESIS_SEED/SECONDS replay it.
TEST(ClusterFaults, BankTransfersKeepTheTotalUnderANemesis) {
  ScriptCluster cluster;
  std::string why;
  ASSERT_TRUE(cluster.Up(3, &why, /*gateways=*/2)) << why;
  auto set = cluster.Cli({"settings", "set", "shard_split_bytes=32768"});
  ASSERT_EQ(set.status, 0) << set.out << set.err;
  const uint64_t seconds = EnvOr("GOJODB_NEMESIS_SECONDS", 20);
  const uint64_t seed = EnvOr("GOJODB_NEMESIS_SEED", static_cast<uint64_t>(NowNanos()) % 100000);
  std::printf("bank: seed %llu, %llu s\n", static_cast<unsigned long long>(seed),
              static_cast<unsigned long long>(seconds));

  // Accounts with filler rows after each, so that splits fall between accounts. About
  // 200 KB in all, six times the split size: a shard's size comes from RocksDB's
  // estimate of its memtable's share, which for a few hundred rows can be half the
  // truth, and a half estimated below the limit after the writes stop is never split
  // (with 12 fillers, 100 KB, the accounts stayed on two shards in about one run in 5).
  constexpr int kAccounts = 8;
  constexpr int kStart = 100;
  std::vector<std::string> accounts;
  for (int i = 0; i < kAccounts; ++i) accounts.push_back("acct" + std::to_string(i));
  {
    Http http(cluster.At("api-1"));
    const std::string filler(1000, 'f');
    for (int i = 0; i < kAccounts; ++i) {
      ASSERT_EQ(http.Put(accounts[i], std::to_string(kStart), std::nullopt).status, 200);
      for (int f = 0; f < 24; ++f) {
        auto a = http.Put(accounts[i] + "-fill" + std::to_string(f), filler, std::nullopt);
        ASSERT_EQ(a.status, 200) << a.body;
      }
    }
  }
  size_t shards = 0;
  for (int i = 0; i < 200 && shards < 3; ++i) {  // up to 40 s: size estimates lag
    auto st = cluster.Status();
    shards = st.is_object() && st.contains("shards") ? st["shards"].size() : 0;
    if (shards < 3) std::this_thread::sleep_for(200ms);
  }
  ASSERT_GE(shards, 3u) << "the accounts did not spread over shards";
  ASSERT_EQ(cluster.Cli({"settings", "set", "shard_split_bytes=1073741824"}).status, 0);
  // The GC at work throughout: snapshots older than a second are collected.
  ASSERT_EQ(cluster.Cli({"settings", "set", "gc_ttl_seconds=1"}).status, 0);
  uint64_t before_faults = 0;
  {
    Http http(cluster.At("api-1"));
    auto a = http.Put("before-faults", "x", std::nullopt);
    ASSERT_EQ(a.status, 200) << a.body;
    before_faults = json::parse(a.body)["version"].get<uint64_t>();
  }

  json read_all = {{"reads", json::array()}};
  for (const auto& a : accounts) read_all["reads"].push_back({{"key", a}});
  // One snapshot of every balance; nullopt if the cluster did not answer.
  auto snapshot = [&](Http& http, std::vector<std::pair<int, uint64_t>>* out) -> bool {
    auto a = http.Post("/v1/txn", read_all);
    if (a.status != 200) return false;
    auto j = json::parse(a.body, nullptr, false);
    if (!j.is_object() || j["reads"].size() != accounts.size()) {
      ADD_FAILURE() << "bad answer: " << a.body;
      return false;
    }
    out->clear();
    for (const auto& r : j["reads"]) {
      if (!r["found"].get<bool>()) {
        ADD_FAILURE() << "an account vanished: " << a.body;
        return false;
      }
      out->emplace_back(r["value"].get<int>(), r["version"].get<uint64_t>());
    }
    return true;
  };

  std::atomic<bool> stop{false};
  std::atomic<int> committed{0}, refused{0}, unknown{0}, snapshots{0};
  std::mutex mu;
  std::vector<std::string> bad_totals;
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(static_cast<uint32_t>(seed * 7 + t));
      Http gateways[2] = {Http(cluster.At("api-1")), Http(cluster.At("api-2"))};
      std::vector<std::pair<int, uint64_t>> bal;
      while (!stop) {
        Http& http = gateways[rng() % 2];
        if (!snapshot(http, &bal)) {
          std::this_thread::sleep_for(50ms);
          continue;
        }
        const int from = static_cast<int>(rng() % kAccounts);
        int to = static_cast<int>(rng() % (kAccounts - 1));
        if (to >= from) ++to;
        const int amount = 1 + static_cast<int>(rng() % 10);
        json ops = json::array();
        ops.push_back({{"op", "put"},
                       {"key", accounts[from]},
                       {"value", std::to_string(bal[from].first - amount)},
                       {"if_version", bal[from].second}});
        ops.push_back({{"op", "put"},
                       {"key", accounts[to]},
                       {"value", std::to_string(bal[to].first + amount)},
                       {"if_version", bal[to].second}});
        auto a = http.Post("/v1/txn", {{"ops", ops}});
        if (a.status == 200) {
          ++committed;
        } else if (a.status == 409) {
          ++refused;  // a conflict, a changed version, or older than the GC: nothing applied
        } else if (a.status >= 400 && a.status < 500) {
          ADD_FAILURE() << "unexpected answer " << a.status << ": " << a.body;
        } else {
          ++unknown;  // no answer or 5xx: it may or may not have committed
        }
      }
    });
  }
  threads.emplace_back([&] {
    Http gateways[2] = {Http(cluster.At("api-1")), Http(cluster.At("api-2"))};
    std::vector<std::pair<int, uint64_t>> bal;
    for (int n = 0; !stop; ++n) {
      if (!snapshot(gateways[n % 2], &bal)) {
        std::this_thread::sleep_for(50ms);
        continue;
      }
      int total = 0;
      for (const auto& [v, version] : bal) total += v;
      ++snapshots;
      if (total != kAccounts * kStart) {
        std::lock_guard lock(mu);
        std::string line = "total " + std::to_string(total) + ":";
        for (const auto& [v, version] : bal) line += " " + std::to_string(v);
        bad_totals.push_back(line);
      }
    }
  });

  // The nemesis: gateways (the coordinators), storage nodes, the controller leader.
  std::mt19937 rng(static_cast<uint32_t>(seed));
  std::vector<std::string> actions;
  auto must = [&](const std::string& cmd, const std::vector<std::string>& names = {}) {
    auto r = cluster.Do(cmd, names);
    EXPECT_EQ(r.status, 0) << cmd << " failed: " << r.out << r.err << "\n" << cluster.Logs();
  };
  auto pause = [&](int min_ms, int max_ms) {
    std::this_thread::sleep_for(std::chrono::milliseconds(min_ms + rng() % (max_ms - min_ms)));
  };
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < end) {
    const int action = static_cast<int>(rng() % 6);
    const std::string gateway = "api-" + std::to_string(1 + rng() % 2);
    const std::string node = "storage-" + std::to_string(1 + rng() % 3);
    if (action <= 1) {
      must("kill", {gateway});
      pause(300, 1500);
      must("restart", {gateway});
      actions.push_back("kill+restart " + gateway);
    } else if (action == 2) {
      must("stop", {gateway});
      pause(500, 2000);
      must("cont", {gateway});
      actions.push_back("stop/cont " + gateway);
    } else if (action == 3) {
      must("kill", {node});
      pause(500, 2000);
      must("restart", {node});
      actions.push_back("kill+restart " + node);
    } else if (action == 4) {
      std::string others;
      for (int i = 1; i <= 3; ++i) {
        const std::string n = "storage-" + std::to_string(i);
        if (n != node) others += (others.empty() ? "" : ",") + n;
      }
      must("partition", {node, others});
      pause(1000, 3000);
      must("heal");
      actions.push_back("partition " + node + " | " + others);
    } else {
      auto st = cluster.Status();
      const std::string leader =
          st.is_object() && st.contains("leader") && st["leader"].get<uint64_t>() != 0
              ? "controller-" + std::to_string(st["leader"].get<uint64_t>())
              : "controller-1";
      must("kill", {leader});
      pause(500, 1500);
      must("restart", {leader});
      actions.push_back("kill+restart " + leader);
    }
    pause(300, 1000);
  }
  std::this_thread::sleep_for(2s);
  stop = true;
  for (auto& t : threads) t.join();

  // The final balances, once the locks left by killed coordinators are resolved.
  Http http(cluster.At("api-2"));
  std::vector<std::pair<int, uint64_t>> final_bal;
  bool read = false;
  for (int attempt = 0; attempt < 60 && !read; ++attempt) {
    read = snapshot(http, &final_bal);
    if (!read) std::this_thread::sleep_for(500ms);
  }
  ASSERT_TRUE(read) << "the balances never became readable again\n" << cluster.Logs();
  int total = 0;
  for (const auto& [v, version] : final_bal) total += v;
  std::printf("bank: %d committed, %d refused, %d unknown, %d snapshots; faults:", committed.load(),
              refused.load(), unknown.load(), snapshots.load());
  for (const auto& a : actions) std::printf(" [%s]", a.c_str());
  std::printf("\n");
  EXPECT_EQ(total, kAccounts * kStart) << "seed " << seed;
  EXPECT_TRUE(bad_totals.empty()) << "seed " << seed << ": " << bad_totals.size()
                                  << " snapshots with a wrong total, first: "
                                  << (bad_totals.empty() ? "" : bad_totals[0]);
  EXPECT_GT(committed.load(), 10) << "too little got through to mean anything\n" << cluster.Logs();
  EXPECT_GT(snapshots.load(), 10);
  // The GC got past everything the faults left behind.
  uint64_t safe_point = 0;
  for (int i = 0; i < 150 && safe_point <= before_faults; ++i) {
    auto st = cluster.Status();
    if (st.is_object() && st.contains("gc")) safe_point = st["gc"]["safe_point"].get<uint64_t>();
    if (safe_point <= before_faults) std::this_thread::sleep_for(200ms);
  }
  EXPECT_GT(safe_point, before_faults) << "seed " << seed << "\n" << cluster.Logs();
}

// Every shard has `rf` replicas, none on `dead`, all voters, and a leader.
bool FullyReplicated(const json& st, size_t rf, uint64_t dead, std::string* why) {
  if (!st.is_object() || st["shards"].empty()) {
    *why = "no status";
    return false;
  }
  for (const auto& s : st["shards"]) {
    const auto& replicas = s["replicas"];
    if (replicas.size() != rf || !s["learners"].empty() || s["leader"].get<uint64_t>() == 0) {
      *why = "shard " + s.dump();
      return false;
    }
    for (const auto& r : replicas) {
      if (r.get<uint64_t>() == dead) {
        *why = "shard " + s.dump();
        return false;
      }
    }
  }
  return true;
}

TEST(ClusterFaults, ADeadNodesReplicasAreRepairedElsewhere) {
  ScriptCluster cluster;
  std::string why;
  ASSERT_TRUE(cluster.Up(4, &why)) << why;
  ASSERT_EQ(cluster
                .Cli({"settings", "set", "node_suspect_timeout_ms=1000",
                      "node_dead_timeout_ms=3000", "shard_split_bytes=32768"})
                .status,
            0);
  Http http(cluster.At("api-1"));
  for (int i = 0; i < 150; ++i) {
    auto a = http.Put("r" + std::to_string(i), std::string(500, 'a' + i % 26), std::nullopt);
    ASSERT_EQ(a.status, 200) << a.body;
  }
  // The node holding the most replicas dies for good.
  std::map<uint64_t, int> count;
  for (const auto& s : cluster.Status()["shards"]) {
    for (const auto& r : s["replicas"]) count[r.get<uint64_t>()]++;
  }
  uint64_t victim = 1;
  for (const auto& [node, n] : count) {
    if (n > count[victim]) victim = node;
  }
  ASSERT_EQ(cluster.Do("kill", {"storage-" + std::to_string(victim)}).status, 0);
  bool repaired = false;
  for (int i = 0; i < 180 && !repaired; ++i) {
    repaired = FullyReplicated(cluster.Status(), 3, victim, &why);
    if (!repaired) std::this_thread::sleep_for(500ms);
  }
  ASSERT_TRUE(repaired) << "still: " << why << "\n" << cluster.Logs();
  for (int i = 0; i < 150; ++i) {
    auto a = http.Get("r" + std::to_string(i));
    ASSERT_EQ(a.status, 200) << "r" << i;
    EXPECT_EQ(a.body, std::string(500, 'a' + i % 26));
  }
}

TEST(ClusterFaults, ANewNodeEvensOutReplicasAndLeaders) {
  ScriptCluster cluster;
  std::string why;
  ASSERT_TRUE(cluster.Up(3, &why)) << why;
  ASSERT_EQ(cluster.Cli({"settings", "set", "shard_split_bytes=16384"}).status, 0);
  Http http(cluster.At("api-1"));
  for (int i = 0; i < 200; ++i) {
    auto a = http.Put("b" + std::to_string(1000 + i), std::string(600, 'x'), std::nullopt);
    ASSERT_EQ(a.status, 200) << a.body;
  }
  // The nodes pick the setting up within a few heartbeats and split; then splitting
  // stops before the new node arrives, so the target stays still.
  size_t shards = 0;
  for (int i = 0; i < 60 && shards < 4; ++i) {
    std::this_thread::sleep_for(500ms);
    shards = cluster.Status()["shards"].size();
  }
  ASSERT_GE(shards, 4u) << "the load should have split the keyspace\n" << cluster.Logs();
  ASSERT_EQ(cluster.Cli({"settings", "set", "shard_split_bytes=1073741824"}).status, 0);
  std::this_thread::sleep_for(3s);
  shards = cluster.Status()["shards"].size();

  // A fourth node, started by hand against the controllers' own addresses.
  const int grpc = FreePort(), http_port = FreePort();
  Process node4({BinDir() + "/gojodb-storage", "--id", "4", "--data-dir",
                 cluster.dir() + "/storage-4", "--grpc-addr", "127.0.0.1:" + std::to_string(grpc),
                 "--http-addr", "127.0.0.1:" + std::to_string(http_port), "--controllers",
                 cluster.ControllerAddrs(), "--zone", "zone-4"},
                cluster.dir() + "/storage-4.log");
  auto even = [&](std::string* detail) {
    auto st = cluster.Status();
    std::map<uint64_t, int> replicas, leaders;
    for (uint64_t n = 1; n <= 4; ++n) replicas[n] = leaders[n] = 0;
    std::ostringstream d;
    bool settled = true;
    for (const auto& s : st["shards"]) {
      for (const auto& r : s["replicas"]) replicas[r.get<uint64_t>()]++;
      if (s["leader"].get<uint64_t>() != 0) leaders[s["leader"].get<uint64_t>()]++;
      if (s["replicas"].size() != 3 || !s["learners"].empty()) {
        settled = false;
        d << " shard " << s["id"].dump() << " replicas=" << s["replicas"].dump()
          << " learners=" << s["learners"].dump() << ";";
      }
    }
    auto spread = [](const std::map<uint64_t, int>& m) {
      int lo = INT32_MAX, hi = 0;
      for (const auto& [n, c] : m) {
        lo = std::min(lo, c);
        hi = std::max(hi, c);
      }
      return hi - lo;
    };
    for (uint64_t n = 1; n <= 4; ++n) d << " node" << n << "=" << replicas[n] << "/" << leaders[n];
    *detail = d.str();
    return settled && spread(replicas) <= 1 && spread(leaders) <= 1;
  };
  bool balanced = false;
  std::string detail;
  for (int i = 0; i < 240 && !balanced; ++i) {
    balanced = even(&detail);
    if (!balanced) std::this_thread::sleep_for(500ms);
  }
  std::printf("balance: %zu shards, replicas/leaders:%s\n", shards, detail.c_str());
  EXPECT_TRUE(balanced) << detail << "\n" << node4.Log() << cluster.Logs();
  for (int i = 0; i < 200; ++i) {
    EXPECT_EQ(http.Get("b" + std::to_string(1000 + i)).status, 200);
  }
}

}  // namespace
}  // namespace gojodb::testing

// `--long`: a soak instead of the bounded CI run.
int main(int argc, char** argv) {
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--long") {
      ::setenv("GOJODB_NEMESIS_SECONDS", "600", /*overwrite=*/0);
    } else {
      args.push_back(argv[i]);
    }
  }
  int n = static_cast<int>(args.size());
  ::testing::InitGoogleTest(&n, args.data());
  return RUN_ALL_TESTS();
}
