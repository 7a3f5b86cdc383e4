// Real processes: three (then four) gojodb-controller members on loopback.
//
// - Clients allocate timestamps through random members while the leader is SIGKILLed
//   and restarted again and again (GOJODB_CONTROLLER_KILLS, default 10): a new leader
//   serves within a few election timeouts, every timestamp is unique and timestamps
//   increase in real-time order, and no catalog or membership entry is lost.
// - The leader is SIGSTOPped: the others take over; after SIGCONT nothing the old
//   leader answers overlaps what the new one handed out.
// - The leader is cut off from the others by a real network partition (TCP proxies on
//   every link): the majority serves, the isolated leader answers no allocation, and
//   after the partition heals it rejoins.
// - The group changes membership (add a fourth member, remove the leader) while
//   clients keep allocating; bad membership requests are refused and change nothing.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <thread>

#include "gojodb/v1/controller.grpc.pb.h"
#include "gojodb/v1/kv.grpc.pb.h"
#include "tests/integration/process.h"
#include "tests/integration/tcp_proxy.h"

namespace gojodb::testing {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

int64_t NowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

class ControllerCluster {
 public:
  // `proxied`: every member reaches every other founding member through a TcpProxy of
  // its own (member i reaches j through proxy i→j), so links can be cut.
  explicit ControllerCluster(std::string dir, int founders = 3, bool proxied = false)
      : dir_(std::move(dir)), founders_count_(founders), proxied_(proxied) {
    for (int id = 1; id <= founders; ++id) Reserve(id);
    for (int id = 1; id <= founders; ++id) {
      founders_ += (id > 1 ? "," : "") + std::to_string(id) + "=" + GrpcAddr(id);
    }
    if (proxied_) {
      for (int from = 1; from <= founders; ++from) {
        for (int to = 1; to <= founders; ++to) {
          if (from != to) proxies_[{from, to}] = std::make_unique<TcpProxy>(grpc_port_[to]);
        }
      }
    }
  }
  // Cuts (or restores) every link between a member of `a` and a member of `b`.
  void Partition(const std::vector<int>& a, const std::vector<int>& b, bool cut = true) {
    for (int x : a) {
      for (int y : b) {
        proxies_.at({x, y})->SetBlocked(cut);
        proxies_.at({y, x})->SetBlocked(cut);
      }
    }
  }
  void Heal() {
    for (auto& [link, p] : proxies_) p->SetBlocked(false);
  }
  void Reserve(int id) {
    grpc_port_[id] = FreePort();
    http_port_[id] = FreePort();
  }
  std::string GrpcAddr(int id) { return "127.0.0.1:" + std::to_string(grpc_port_.at(id)); }
  int http_port(int id) { return http_port_.at(id); }

  // Flags every member gets from now on.
  void AddFlags(std::vector<std::string> flags) {
    extra_.insert(extra_.end(), flags.begin(), flags.end());
  }
  void Start(int id, bool join = false) {
    std::string peers = founders_;
    if (proxied_) {
      peers.clear();
      for (int j = 1; j <= founders_count_; ++j) {
        peers += (j > 1 ? "," : "") + std::to_string(j) + "=" +
                 (j == id ? GrpcAddr(j) : proxies_.at({id, j})->addr());
      }
    }
    if (join) peers += "," + std::to_string(id) + "=" + GrpcAddr(id);
    std::vector<std::string> argv{BinDir() + "/gojodb-controller",
                                  "--id",
                                  std::to_string(id),
                                  "--data-dir",
                                  dir_ + "/c" + std::to_string(id),
                                  "--grpc-addr",
                                  GrpcAddr(id),
                                  "--http-addr",
                                  "127.0.0.1:" + std::to_string(http_port_[id]),
                                  "--peers",
                                  peers,
                                  "--placement-interval-ms",
                                  "200"};
    if (join) {
      argv.push_back("--join");
      argv.push_back("true");
    }
    argv.insert(argv.end(), extra_.begin(), extra_.end());
    procs_[id] = std::make_unique<Process>(argv, dir_ + "/c" + std::to_string(id) + ".log");
  }
  bool Running(int id) { return procs_.count(id) && procs_[id] && procs_[id]->Running(); }
  void Kill(int id) {
    procs_[id]->Signal(SIGKILL);
    procs_[id]->Wait();
  }
  void Signal(int id, int sig) { procs_[id]->Signal(sig); }
  bool WaitReady(int id) { return testing::WaitReady(http_port_[id], procs_[id].get(), 20000); }

  // The leader some running member names, if that member is running, else 0.
  int Leader() {
    for (auto& [id, p] : procs_) {
      if (!Running(id)) continue;
      httplib::Client c("127.0.0.1", http_port_[id]);
      c.set_connection_timeout(0, 200000);
      c.set_read_timeout(1, 0);
      auto r = c.Get("/readyz");
      if (!r || r->status != 200) continue;
      int leader = json::parse(r->body, nullptr, false).value("leader", 0);
      if (leader != 0 && Running(leader)) return leader;
    }
    return 0;
  }
  int WaitLeader(int timeout_ms = 20000) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (std::chrono::steady_clock::now() < deadline) {
      if (int l = Leader()) return l;
      std::this_thread::sleep_for(20ms);
    }
    return 0;
  }
  std::vector<int> Members() {
    std::vector<int> out;
    for (auto& [id, p] : procs_) out.push_back(id);
    return out;
  }

  std::unique_ptr<v1::Controller::Stub> ControllerStub(int id) {
    return v1::Controller::NewStub(
        grpc::CreateChannel(GrpcAddr(id), grpc::InsecureChannelCredentials()));
  }
  std::unique_ptr<v1::Catalog::Stub> CatalogStub(int id) {
    return v1::Catalog::NewStub(
        grpc::CreateChannel(GrpcAddr(id), grpc::InsecureChannelCredentials()));
  }

  std::string Logs() {
    std::string out;
    for (auto& [id, p] : procs_) {
      std::string log = p ? p->Log() : "";
      if (log.size() > 4000) log = log.substr(log.size() - 4000);
      out += "--- controller-" + std::to_string(id) + "\n" + log;
    }
    return out;
  }

 private:
  std::string dir_;
  std::string founders_;
  const int founders_count_;
  const bool proxied_;
  std::vector<std::string> extra_;
  std::map<int, int> grpc_port_, http_port_;
  std::map<std::pair<int, int>, std::unique_ptr<TcpProxy>> proxies_;
  std::map<int, std::unique_ptr<Process>> procs_;
};

// One successful allocation as a client saw it.
struct TsoOp {
  int64_t start_us, end_us;
  uint64_t first;
  uint64_t count;
};

// Clients that allocate timestamps through random running members over HTTP.
class TsoClients {
 public:
  TsoClients(ControllerCluster* cluster, int threads) : cluster_(cluster) {
    for (int t = 0; t < threads; ++t) {
      threads_.emplace_back([this, t] { Run(t); });
    }
  }
  ~TsoClients() { Stop(); }
  void Stop() {
    stop_ = true;
    for (auto& th : threads_)
      if (th.joinable()) th.join();
  }
  std::vector<TsoOp> Ops() {
    std::lock_guard lock(mu_);
    return ops_;
  }
  size_t Count() {
    std::lock_guard lock(mu_);
    return ops_.size();
  }
  // Blocks until `n` more allocations succeeded after the call, or the timeout.
  bool WaitMore(size_t n, std::chrono::milliseconds timeout) {
    const size_t target = Count() + n;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (Count() >= target) return true;
      std::this_thread::sleep_for(5ms);
    }
    return false;
  }

 private:
  void Run(int t) {
    std::mt19937 rng(static_cast<uint32_t>(t * 7919 + 1));
    // A member that left a request unanswered (a paused process) is passed over for a
    // while, as a client passes over an endpoint that timed out: otherwise each thread
    // would spend a read timeout on it every few requests.
    std::map<int, int64_t> avoid_until_us;
    while (!stop_) {
      auto members = cluster_->Members();
      int id = members[rng() % members.size()];
      if (!cluster_->Running(id)) {
        std::this_thread::sleep_for(2ms);
        continue;
      }
      if (auto a = avoid_until_us.find(id); a != avoid_until_us.end() && NowUs() < a->second) {
        std::this_thread::sleep_for(1ms);
        continue;
      }
      const uint64_t count = 1 + rng() % 5;
      httplib::Client c("127.0.0.1", cluster_->http_port(id));
      c.set_connection_timeout(0, 300000);
      c.set_read_timeout(3, 0);
      const int64_t start = NowUs();
      auto r = c.Get("/v1/tso?count=" + std::to_string(count));
      const int64_t end = NowUs();
      if (!r && r.error() == httplib::Error::Read) avoid_until_us[id] = end + 2'000'000;
      if (!r || r->status != 200) {
        std::this_thread::sleep_for(5ms);
        continue;
      }
      auto j = json::parse(r->body, nullptr, false);
      auto ts = j.value("timestamps", json::array());
      if (ts.size() != count) {
        bad_ = true;
        continue;
      }
      for (size_t i = 1; i < ts.size(); ++i) {
        if (ts[i].get<uint64_t>() != ts[0].get<uint64_t>() + i) bad_ = true;
      }
      std::lock_guard lock(mu_);
      ops_.push_back({start, end, ts[0].get<uint64_t>(), count});
    }
  }

  ControllerCluster* cluster_;
  std::atomic<bool> stop_{false};

 public:
  std::atomic<bool> bad_{false};  // an answer that was not count consecutive timestamps

 private:
  std::mutex mu_;
  std::vector<TsoOp> ops_;
  std::vector<std::thread> threads_;
};

// Every timestamp handed out once; and if A finished before B began, A's are smaller.
void CheckTimestamps(std::vector<TsoOp> ops) {
  ASSERT_FALSE(ops.empty());
  auto by_first = ops;
  std::sort(by_first.begin(), by_first.end(),
            [](const TsoOp& a, const TsoOp& b) { return a.first < b.first; });
  for (size_t i = 1; i < by_first.size(); ++i) {
    ASSERT_GE(by_first[i].first, by_first[i - 1].first + by_first[i - 1].count)
        << "timestamp " << by_first[i].first << " was handed out twice";
  }
  auto by_end = ops;
  std::sort(by_end.begin(), by_end.end(),
            [](const TsoOp& a, const TsoOp& b) { return a.end_us < b.end_us; });
  auto by_start = ops;
  std::sort(by_start.begin(), by_start.end(),
            [](const TsoOp& a, const TsoOp& b) { return a.start_us < b.start_us; });
  size_t e = 0;
  uint64_t max_last_ended = 0;
  for (const auto& op : by_start) {
    while (e < by_end.size() && by_end[e].end_us < op.start_us) {
      max_last_ended = std::max(max_last_ended, by_end[e].first + by_end[e].count - 1);
      ++e;
    }
    ASSERT_GT(op.first, max_last_ended)
        << "a timestamp went back: an allocation that began after another ended got a "
           "smaller timestamp";
  }
}

std::set<std::string> Collections(ControllerCluster* c, int id) {
  v1::ListCollectionsResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 5s);
  auto s = c->CatalogStub(id)->ListCollections(&ctx, {}, &resp);
  std::set<std::string> out;
  if (!s.ok()) return out;
  for (const auto& col : resp.collections()) out.insert(col.name());
  return out;
}

// Retries a call that may meet an election (UNAVAILABLE) or an unknown outcome.
template <typename F>
grpc::Status Retry(F f) {
  grpc::Status s;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (std::chrono::steady_clock::now() < deadline) {
    s = f();
    if (s.error_code() != grpc::StatusCode::UNAVAILABLE &&
        s.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED)
      return s;
    std::this_thread::sleep_for(100ms);
  }
  return s;
}

class ControllerClusterTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = TempDir("controllers"); }
  void TearDown() override {
    if (HasFailure() && cluster_) std::fprintf(stderr, "%s\n", cluster_->Logs().c_str());
    cluster_.reset();
    std::filesystem::remove_all(dir_);
  }
  void StartThree() {
    cluster_ = std::make_unique<ControllerCluster>(dir_);
    for (int id = 1; id <= 3; ++id) cluster_->Start(id);
    for (int id = 1; id <= 3; ++id) ASSERT_TRUE(cluster_->WaitReady(id)) << id;
  }
  std::string dir_;
  std::unique_ptr<ControllerCluster> cluster_;
};

TEST_F(ControllerClusterTest, BadFlagsAndALockedDataDirectoryAreRefused) {
  const std::string bin = BinDir() + "/gojodb-controller";
  const std::string d = dir_ + "/flags";
  auto run = [&](std::vector<std::string> args) {
    args.insert(args.begin(), bin);
    return RunCommand(args, "", 20000);
  };
  const std::string grpc = "127.0.0.1:" + std::to_string(FreePort());
  const std::string http = "127.0.0.1:" + std::to_string(FreePort());
  struct Case {
    std::vector<std::string> args;
    std::string says;
  };
  const std::vector<Case> cases = {
      {{"--data-dir", d, "--grpc-addr", grpc, "--http-addr", http, "--peers", "1=" + grpc}, "id"},
      {{"--id", "0", "--data-dir", d, "--grpc-addr", grpc, "--http-addr", http, "--peers",
        "1=" + grpc},
       "positive"},
      {{"--id", "1", "--data-dir", d, "--grpc-addr", grpc, "--http-addr", http, "--peers",
        "1" + grpc},
       "ID=host:port"},
      {{"--id", "1", "--data-dir", d, "--grpc-addr", grpc, "--http-addr", http, "--peers",
        "2=127.0.0.1:1"},
       "must include this member"},
      {{"--id", "1", "--data-dir", d, "--grpc-addr", grpc, "--http-addr", http, "--peers",
        "1=" + grpc + ",1=127.0.0.1:2"},
       "twice"},
      {{"--id", "1", "--data-dir", d, "--grpc-addr", "nowhere", "--http-addr", http, "--peers",
        "1=" + grpc},
       "grpc-addr"},
      {{"--id", "1", "--data-dir", d, "--grpc-addr", grpc, "--http-addr", http, "--peers",
        "1=" + grpc, "--raft-election-ticks", "1"},
       "election"},
  };
  for (const auto& c : cases) {
    auto r = run(c.args);
    EXPECT_EQ(r.status, 2) << c.says << ": " << r.err;
    EXPECT_NE(r.err.find(c.says), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one line: " << r.err;
  }
  // A second process on a data directory in use is refused (exit 1) and names the holder.
  Process first({bin, "--id", "1", "--data-dir", d, "--grpc-addr", grpc, "--http-addr", http,
                 "--peers", "1=" + grpc},
                dir_ + "/first.log");
  ASSERT_TRUE(WaitReady(std::stoi(http.substr(http.rfind(':') + 1)), &first));
  auto second =
      run({"--id", "1", "--data-dir", d, "--grpc-addr", "127.0.0.1:" + std::to_string(FreePort()),
           "--http-addr", "127.0.0.1:" + std::to_string(FreePort()), "--peers", "1=" + grpc});
  EXPECT_EQ(second.status, 1) << second.err;
  EXPECT_NE(second.err.find(std::to_string(first.pid())), std::string::npos) << second.err;
  // SIGTERM shuts it down cleanly.
  first.Signal(SIGTERM);
  EXPECT_EQ(first.Wait(10000), 0);
}

TEST_F(ControllerClusterTest, LeaderKillsLoseNoTimestampCatalogOrMembership) {
  StartThree();
  int kills = 10;
  if (const char* k = std::getenv("GOJODB_CONTROLLER_KILLS")) kills = std::max(1, std::atoi(k));

  // Catalog and membership entries made before the faults.
  auto create = [&](const std::string& name) {
    return Retry([&] {
      v1::CreateCollectionRequest req;
      req.set_name(name);
      v1::CollectionInfo resp;
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + 5s);
      int via = cluster_->Leader() ? cluster_->Leader() : 1;
      auto s = cluster_->CatalogStub(via)->CreateCollection(&ctx, req, &resp);
      // A retry of a create that applied meets ALREADY_EXISTS: it is there.
      return s.error_code() == grpc::StatusCode::ALREADY_EXISTS ? grpc::Status::OK : s;
    });
  };
  auto register_node = [&](int n) {
    return Retry([&] {
      v1::RegisterNodeRequest req;
      req.mutable_node()->set_id(n);
      req.mutable_node()->set_grpc_addr("10.0.0." + std::to_string(n) + ":7000");
      (*req.mutable_node()->mutable_labels())["zone"] = "z" + std::to_string(n % 3);
      v1::RegisterNodeResponse resp;
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + 5s);
      int via = 1 + n % 3;
      if (!cluster_->Running(via)) via = cluster_->Leader();
      return cluster_->ControllerStub(via)->RegisterNode(&ctx, req, &resp);
    });
  };
  ASSERT_TRUE(create("before").ok());
  ASSERT_TRUE(register_node(1).ok());

  TsoClients clients(cluster_.get(), 4);
  ASSERT_TRUE(clients.WaitMore(20, 10s));
  std::vector<double> failover_ms;
  for (int k = 0; k < kills; ++k) {
    const int leader = cluster_->WaitLeader();
    ASSERT_NE(leader, 0) << "kill " << k;
    cluster_->Kill(leader);
    const auto killed_at = std::chrono::steady_clock::now();
    ASSERT_TRUE(clients.WaitMore(5, 15s)) << "no timestamps after killing leader " << leader;
    failover_ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - killed_at)
            .count());
    // Catalog and membership changes keep landing between the faults.
    ASSERT_TRUE(create("during-" + std::to_string(k)).ok()) << k;
    ASSERT_TRUE(register_node(10 + k).ok()) << k;
    cluster_->Start(leader);
    ASSERT_TRUE(cluster_->WaitReady(leader)) << leader;
  }
  ASSERT_TRUE(clients.WaitMore(20, 10s));
  clients.Stop();
  EXPECT_FALSE(clients.bad_);
  const auto ops = clients.Ops();
  CheckTimestamps(ops);
  std::sort(failover_ms.begin(), failover_ms.end());
  std::printf("controller failover: %zu kills, %zu allocations, median %.0f ms, max %.0f ms\n",
              failover_ms.size(), ops.size(), failover_ms[failover_ms.size() / 2],
              failover_ms.back());

  // Nothing lost, on every member (each serves the catalog from its own state).
  std::set<std::string> want = {"default", "before"};
  for (int k = 0; k < kills; ++k) want.insert("during-" + std::to_string(k));
  for (int id = 1; id <= 3; ++id) {
    std::set<std::string> got;
    for (int i = 0; i < 100 && got != want; ++i) {
      got = Collections(cluster_.get(), id);
      if (got != want) std::this_thread::sleep_for(50ms);
    }
    EXPECT_EQ(got, want) << "controller " << id;
  }
  v1::ListNodesResponse nodes;
  ASSERT_TRUE(Retry([&] {
                grpc::ClientContext ctx;
                ctx.set_deadline(std::chrono::system_clock::now() + 5s);
                nodes.Clear();
                return cluster_->ControllerStub(1)->ListNodes(&ctx, {}, &nodes);
              }).ok());
  std::set<uint64_t> ids;
  for (const auto& n : nodes.nodes()) ids.insert(n.node().id());
  EXPECT_EQ(ids.size(), static_cast<size_t>(1 + kills));
  EXPECT_TRUE(ids.count(1));
  EXPECT_TRUE(ids.count(10 + kills - 1));
}

TEST_F(ControllerClusterTest, StoppedLeaderHandsOutNothingTheNewLeaderCould) {
  StartThree();
  TsoClients clients(cluster_.get(), 3);
  ASSERT_TRUE(clients.WaitMore(20, 10s));
  const int old = cluster_->WaitLeader();
  ASSERT_NE(old, 0);
  cluster_->Signal(old, SIGSTOP);
  // A request that reaches the paused leader; it is answered only after SIGCONT.
  std::atomic<bool> answered{false};
  TsoOp paused_op{};
  bool paused_ok = false;
  std::thread paused([&] {
    httplib::Client c("127.0.0.1", cluster_->http_port(old));
    c.set_read_timeout(60, 0);
    paused_op.start_us = NowUs();
    auto r = c.Get("/v1/tso?count=3");
    paused_op.end_us = NowUs();
    if (r && r->status == 200) {
      auto ts = json::parse(r->body, nullptr, false).value("timestamps", json::array());
      if (ts.size() == 3) {
        paused_op.first = ts[0].get<uint64_t>();
        paused_op.count = 3;
        paused_ok = true;
      }
    }
    answered = true;
  });
  // The others elect a leader and serve.
  const bool served = clients.WaitMore(30, 20s);
  const bool answered_while_stopped = answered.load();
  cluster_->Signal(old, SIGCONT);
  paused.join();
  ASSERT_TRUE(served) << "no timestamps while the leader is stopped";
  EXPECT_FALSE(answered_while_stopped);
  ASSERT_TRUE(clients.WaitMore(20, 10s));
  clients.Stop();
  auto ops = clients.Ops();
  if (paused_ok) ops.push_back(paused_op);
  CheckTimestamps(ops);
  // The old leader rejoined as a follower.
  const int now_leader = cluster_->WaitLeader();
  EXPECT_NE(now_leader, 0);
}

TEST_F(ControllerClusterTest, PartitionedLeaderServesNothingAndRejoins) {
  cluster_ = std::make_unique<ControllerCluster>(dir_, 3, /*proxied=*/true);
  for (int id = 1; id <= 3; ++id) cluster_->Start(id);
  for (int id = 1; id <= 3; ++id) ASSERT_TRUE(cluster_->WaitReady(id)) << id;
  TsoClients clients(cluster_.get(), 3);
  ASSERT_TRUE(clients.WaitMore(20, 10s));
  const int old = cluster_->WaitLeader();
  ASSERT_NE(old, 0);
  std::vector<int> others;
  for (int id = 1; id <= 3; ++id)
    if (id != old) others.push_back(id);
  cluster_->Partition({old}, others);
  // Every allocation asked of the isolated leader after the cut fails: it cannot
  // confirm its leadership, then it steps down.
  int refused = 0, served = 0;
  const auto until = std::chrono::steady_clock::now() + 2s;
  while (std::chrono::steady_clock::now() < until) {
    httplib::Client c("127.0.0.1", cluster_->http_port(old));
    c.set_read_timeout(7, 0);
    auto r = c.Get("/v1/tso?count=1");
    (r && r->status == 200 ? served : refused)++;
  }
  EXPECT_EQ(served, 0);
  EXPECT_GT(refused, 0);
  // The majority elects a leader and serves meanwhile.
  ASSERT_TRUE(clients.WaitMore(30, 20s)) << "the majority served no timestamp";
  const int new_leader = cluster_->Leader();
  EXPECT_NE(new_leader, old);
  cluster_->Heal();
  // The old leader rejoins as a follower and answers again (forwarding to the leader).
  bool answered = false;
  for (int i = 0; i < 200 && !answered; ++i) {
    httplib::Client c("127.0.0.1", cluster_->http_port(old));
    c.set_read_timeout(3, 0);
    auto r = c.Get("/v1/tso?count=1");
    answered = r && r->status == 200;
    if (!answered) std::this_thread::sleep_for(50ms);
  }
  EXPECT_TRUE(answered) << "the healed member does not answer";
  ASSERT_TRUE(clients.WaitMore(20, 10s));
  clients.Stop();
  CheckTimestamps(clients.Ops());
  EXPECT_FALSE(clients.bad_);
}

// An operator's listing of the shard map (`linearizable`) is the map as of the call: a
// member cut off from the others refuses it rather than answer with the map it last
// applied, which a router's plain request still gets; once healed, the member answers
// with every change.
TEST_F(ControllerClusterTest, AnOperatorsShardMapIsCurrentOrRefused) {
  cluster_ = std::make_unique<ControllerCluster>(dir_, 3, /*proxied=*/true);
  for (int id = 1; id <= 3; ++id) cluster_->Start(id);
  for (int id = 1; id <= 3; ++id) ASSERT_TRUE(cluster_->WaitReady(id)) << id;
  const int leader = cluster_->WaitLeader();
  ASSERT_NE(leader, 0);
  auto register_node = [&](uint64_t n) {
    return Retry([&] {
      v1::RegisterNodeRequest req;
      req.mutable_node()->set_id(n);
      req.mutable_node()->set_grpc_addr("10.2.0." + std::to_string(n) + ":7000");
      v1::RegisterNodeResponse resp;
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + 5s);
      return cluster_->ControllerStub(leader)->RegisterNode(&ctx, req, &resp);
    });
  };
  // The nodes a member's map lists (with the call's status).
  struct Listed {
    grpc::StatusCode code;
    std::set<uint64_t> nodes;
  };
  auto listed = [&](int via, bool linearizable) {
    v1::GetShardMapRequest req;
    req.set_linearizable(linearizable);
    v1::GetShardMapResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 3s);
    auto s = cluster_->ControllerStub(via)->GetShardMap(&ctx, req, &resp);
    Listed out{s.error_code(), {}};
    for (const auto& n : resp.nodes()) out.nodes.insert(n.id());
    return out;
  };
  ASSERT_TRUE(register_node(1).ok());
  const int cut = leader % 3 + 1;
  std::vector<int> rest;
  for (int id = 1; id <= 3; ++id)
    if (id != cut) rest.push_back(id);
  auto has = [](const Listed& l, uint64_t n) {
    return l.code == grpc::StatusCode::OK && l.nodes.count(n) > 0;
  };
  for (int i = 0; i < 100 && !has(listed(cut, false), 1); ++i) std::this_thread::sleep_for(50ms);
  ASSERT_TRUE(has(listed(cut, false), 1)) << "the member never applied node 1";

  cluster_->Partition({cut}, rest);
  ASSERT_TRUE(register_node(2).ok());
  ASSERT_TRUE(has(listed(leader, true), 2));
  auto stale = listed(cut, false);
  ASSERT_EQ(stale.code, grpc::StatusCode::OK);
  EXPECT_TRUE(stale.nodes.count(1));
  EXPECT_EQ(stale.nodes.count(2), 0u) << "the cut-off member cannot have applied node 2";
  EXPECT_EQ(listed(cut, true).code, grpc::StatusCode::UNAVAILABLE);

  cluster_->Heal();
  bool current = false;
  for (int i = 0; i < 100 && !current; ++i) {
    current = has(listed(cut, true), 2);
    if (!current) std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(current) << "the healed member does not list node 2";
}

TEST_F(ControllerClusterTest, MembershipChangesWhileServing) {
  // Frequent snapshots and a short log tail: the member added below can only catch up
  // through a snapshot streamed by the leader.
  cluster_ = std::make_unique<ControllerCluster>(dir_);
  cluster_->AddFlags({"--raft-snapshot-entries", "10", "--raft-retain-entries", "2"});
  for (int id = 1; id <= 3; ++id) cluster_->Start(id);
  for (int id = 1; id <= 3; ++id) ASSERT_TRUE(cluster_->WaitReady(id)) << id;
  cluster_->Reserve(4);
  TsoClients clients(cluster_.get(), 3);
  ASSERT_TRUE(clients.WaitMore(20, 10s));
  for (int i = 0; i < 25; ++i) {  // enough entries for a few snapshots and compactions
    ASSERT_TRUE(Retry([&] {
                  v1::CreateCollectionRequest req;
                  req.set_name("early-" + std::to_string(i));
                  v1::CollectionInfo resp;
                  grpc::ClientContext ctx;
                  ctx.set_deadline(std::chrono::system_clock::now() + 5s);
                  auto s = cluster_->CatalogStub(1)->CreateCollection(&ctx, req, &resp);
                  return s.error_code() == grpc::StatusCode::ALREADY_EXISTS ? grpc::Status::OK : s;
                }).ok());
  }
  ASSERT_TRUE(Retry([&] {
                v1::CreateCollectionRequest req;
                req.set_name("kept");
                v1::CollectionInfo resp;
                grpc::ClientContext ctx;
                ctx.set_deadline(std::chrono::system_clock::now() + 5s);
                auto s = cluster_->CatalogStub(2)->CreateCollection(&ctx, req, &resp);
                return s.error_code() == grpc::StatusCode::ALREADY_EXISTS ? grpc::Status::OK : s;
              }).ok());

  auto call = [&](int via, auto method, const auto& req, auto* resp) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 20s);
    auto stub = cluster_->ControllerStub(via);
    return ((*stub).*method)(&ctx, req, resp);
  };
  // Bad requests change nothing.
  {
    v1::AddControllerRequest dup;
    dup.set_id(2);
    dup.set_grpc_addr(cluster_->GrpcAddr(4));
    v1::AddControllerResponse r;
    EXPECT_EQ(call(1, &v1::Controller::Stub::AddController, dup, &r).error_code(),
              grpc::StatusCode::ALREADY_EXISTS);
    v1::RemoveControllerRequest unknown;
    unknown.set_id(99);
    v1::RemoveControllerResponse rr;
    EXPECT_EQ(call(1, &v1::Controller::Stub::RemoveController, unknown, &rr).error_code(),
              grpc::StatusCode::NOT_FOUND);
    v1::AddControllerRequest bad;
    bad.set_id(0);
    EXPECT_EQ(call(1, &v1::Controller::Stub::AddController, bad, &r).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
  }

  // Add a fourth member with the CLI, through a follower (forwarded to the leader).
  cluster_->Start(4, /*join=*/true);
  const int via = cluster_->WaitLeader() % 3 + 1;
  RunResult added;
  for (int attempt = 0; attempt < 10; ++attempt) {
    added = RunCommand({BinDir() + "/gojodb", "--addr", cluster_->GrpcAddr(via), "--timeout-ms",
                        "20000", "controller", "add", "4", cluster_->GrpcAddr(4)});
    if (added.status == 0) break;
    std::this_thread::sleep_for(500ms);
  }
  ASSERT_EQ(added.status, 0) << added.out << added.err;
  ASSERT_TRUE(cluster_->WaitReady(4));
  // The new member has the state from before it joined.
  std::set<std::string> got;
  for (int i = 0; i < 100 && !got.count("kept"); ++i) {
    got = Collections(cluster_.get(), 4);
    if (!got.count("kept")) std::this_thread::sleep_for(50ms);
  }
  EXPECT_TRUE(got.count("kept"));
  EXPECT_TRUE(got.count("early-0"));
  EXPECT_TRUE(got.count("early-24"));
  // It got there through a snapshot: its metrics show one installed.
  {
    httplib::Client c("127.0.0.1", cluster_->http_port(4));
    auto r = c.Get("/metrics");
    ASSERT_TRUE(r && r->status == 200);
    const std::string metric = "\ngojodb_raft_snapshots_installed ";
    auto pos = r->body.find(metric);
    ASSERT_NE(pos, std::string::npos);
    EXPECT_GT(std::stoull(r->body.substr(pos + metric.size())), 0u) << r->body.substr(pos, 60);
  }
  ASSERT_TRUE(clients.WaitMore(20, 10s));

  // Remove the leader itself: it hands over leadership first.
  const int leader = cluster_->WaitLeader();
  ASSERT_NE(leader, 0);
  v1::RemoveControllerRequest rm;
  rm.set_id(leader);
  v1::RemoveControllerResponse rm_resp;
  const int other = leader == 4 ? 1 : 4;
  auto s =
      Retry([&] { return call(other, &v1::Controller::Stub::RemoveController, rm, &rm_resp); });
  ASSERT_TRUE(s.ok()) << s.error_message();
  std::this_thread::sleep_for(300ms);
  cluster_->Kill(leader);  // the operator stops the removed member
  ASSERT_TRUE(clients.WaitMore(20, 15s)) << "no timestamps after the membership change";

  // Three voters remain; with one of them down, removing another would leave one of two
  // reachable: refused.
  std::vector<int> remaining;
  for (int id = 1; id <= 4; ++id)
    if (id != leader) remaining.push_back(id);
  const int now_leader = cluster_->WaitLeader();
  ASSERT_NE(now_leader, 0);
  int down = -1, target = -1;
  for (int id : remaining) {
    if (id == now_leader) continue;
    if (down < 0) {
      down = id;
    } else {
      target = id;
    }
  }
  cluster_->Kill(down);
  std::this_thread::sleep_for(1500ms);  // past an election timeout: the leader notices
  v1::RemoveControllerRequest below;
  below.set_id(target);
  s = call(now_leader, &v1::Controller::Stub::RemoveController, below, &rm_resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
  ASSERT_TRUE(clients.WaitMore(10, 10s)) << "the group stopped serving";
  clients.Stop();
  CheckTimestamps(clients.Ops());
  EXPECT_FALSE(clients.bad_);
}

// Storage nodes played by this test over the public API: they register, heartbeat and
// carry out what the answers ask. The controller bootstraps the first shard on three
// zones, declares a silent node dead and moves its replica, across a controller
// failover too.
TEST_F(ControllerClusterTest, PlacementBootstrapsAndRepairsThroughHeartbeats) {
  StartThree();
  auto settings = Retry([&] {
    v1::UpdateSettingsRequest req;
    req.set_patch_json(R"({"node_suspect_timeout_ms":300,"node_dead_timeout_ms":1200})");
    v1::Settings resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 5s);
    return cluster_->ControllerStub(2)->UpdateSettings(&ctx, req, &resp);
  });
  ASSERT_TRUE(settings.ok()) << settings.error_message();

  std::mutex mu;
  std::map<uint64_t, v1::ShardDescriptor> hosted;  // node -> its view of shard 1
  std::set<uint64_t> alive;
  std::vector<v1::ShardCommand> seen;
  auto register_node = [&](uint64_t n, const std::string& zone) {
    return Retry([&] {
      v1::RegisterNodeRequest req;
      req.mutable_node()->set_id(n);
      req.mutable_node()->set_grpc_addr("10.1.0." + std::to_string(n) + ":7000");
      (*req.mutable_node()->mutable_labels())["zone"] = zone;
      v1::RegisterNodeResponse resp;
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + 5s);
      return cluster_->ControllerStub(1 + n % 3)->RegisterNode(&ctx, req, &resp);
    });
  };
  // Carries out a command as a storage node would (the shard leader is node 1).
  auto carry_out = [&](uint64_t n, const v1::ShardCommand& c) {
    seen.push_back(c);
    if (c.kind() == "create") {
      hosted[n] = c.shard();
      if (n == 1) hosted[n].set_leader(1);
      return;
    }
    if (n != 1 || !hosted.count(1)) return;
    v1::ShardDescriptor d = hosted[1];
    if (c.kind() == "add_replica") {
      d.add_replicas()->set_node(c.node());
      hosted[c.node()] = d;
    } else if (c.kind() == "remove_replica") {
      v1::ShardDescriptor kept = d;
      kept.clear_replicas();
      for (const auto& r : d.replicas())
        if (r.node() != c.node()) *kept.add_replicas() = r;
      d = kept;
      hosted.erase(c.node());
    } else {
      return;
    }
    d.set_conf_ver(d.conf_ver() + 1);
    hosted[1] = d;
  };
  std::atomic<bool> stop{false};
  std::thread heartbeats;
  // Joined on every way out of the test, failed assertions included.
  std::unique_ptr<void, std::function<void(void*)>> join_heartbeats(reinterpret_cast<void*>(1),
                                                                    [&](void*) {
                                                                      stop = true;
                                                                      if (heartbeats.joinable())
                                                                        heartbeats.join();
                                                                    });
  heartbeats = std::thread([&] {
    while (!stop) {
      std::set<uint64_t> nodes;
      {
        std::lock_guard lock(mu);
        nodes = alive;
      }
      for (uint64_t n : nodes) {
        v1::HeartbeatRequest req;
        req.set_node_id(n);
        {
          std::lock_guard lock(mu);
          if (hosted.count(n)) *req.add_shards() = hosted[n];
        }
        v1::HeartbeatResponse resp;
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + 2s);
        int via = cluster_->Leader();
        if (via == 0) continue;
        if (!cluster_->ControllerStub(via)->Heartbeat(&ctx, req, &resp).ok()) continue;
        std::lock_guard lock(mu);
        for (const auto& c : resp.commands()) carry_out(n, c);
      }
      std::this_thread::sleep_for(100ms);
    }
  });
  auto shard_map = [&](uint64_t known, uint32_t wait_ms) {
    v1::GetShardMapRequest req;
    req.set_known_version(known);
    req.set_wait_ms(wait_ms);
    v1::GetShardMapResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 30s);
    int via = 3;  // any running member serves the map
    while (!cluster_->Running(via)) via = via % 3 + 1;
    (void)cluster_->ControllerStub(via)->GetShardMap(&ctx, req, &resp);
    return resp;
  };
  auto replicas_of_shard = [&]() {
    std::set<uint64_t> out;
    auto m = shard_map(0, 0);
    if (m.shards_size() == 1)
      for (const auto& r : m.shards(0).replicas()) out.insert(r.node());
    return out;
  };
  auto wait_for = [&](auto pred, std::chrono::seconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (pred()) return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  };

  for (auto [n, zone] :
       std::vector<std::pair<uint64_t, std::string>>{{1, "z1"}, {2, "z2"}, {3, "z3"}}) {
    ASSERT_TRUE(register_node(n, zone).ok());
    std::lock_guard lock(mu);
    alive.insert(n);
  }
  // The first shard: one replica per zone, each node told to create it.
  ASSERT_TRUE(wait_for(
      [&] {
        return replicas_of_shard() == std::set<uint64_t>{1, 2, 3};
      },
      20s))
      << "no shard bootstrapped";
  ASSERT_TRUE(wait_for(
      [&] {
        std::lock_guard lock(mu);
        return hosted.size() == 3;
      },
      20s));
  {
    std::lock_guard lock(mu);
    int creates = 0;
    for (const auto& c : seen) creates += c.kind() == "create";
    EXPECT_EQ(creates, 3);
  }

  // A watcher long-polls the map; a registration wakes it.
  const uint64_t version = shard_map(0, 0).version();
  std::atomic<uint64_t> woke_at{0};
  std::thread watcher([&] { woke_at = shard_map(version, 20000).version(); });
  std::this_thread::sleep_for(200ms);
  const bool registered = register_node(4, "z3").ok();
  watcher.join();
  ASSERT_TRUE(registered);
  EXPECT_GT(woke_at.load(), version);

  // Node 3 falls silent; node 4 heartbeats. The controller asks the shard's leader to
  // add a replica on node 4 and then to drop the dead one.
  {
    std::lock_guard lock(mu);
    alive.erase(3);
    alive.insert(4);
  }
  ASSERT_TRUE(wait_for([&] { return replicas_of_shard().count(4) > 0; }, 30s))
      << "node 3's replica was not re-created on node 4";
  // A controller failover in the middle: the new leader plans again.
  const int leader = cluster_->WaitLeader();
  ASSERT_NE(leader, 0);
  cluster_->Kill(leader);
  ASSERT_TRUE(wait_for(
      [&] {
        return replicas_of_shard() == std::set<uint64_t>{1, 2, 4};
      },
      30s))
      << "the dead replica was not removed";
  cluster_->Start(leader);
  join_heartbeats.reset();
  {
    std::lock_guard lock(mu);
    bool add4 = false, rm3 = false;
    for (const auto& c : seen) {
      add4 = add4 || (c.kind() == "add_replica" && c.node() == 4 && c.reason() == "repair");
      rm3 = rm3 || (c.kind() == "remove_replica" && c.node() == 3);
    }
    EXPECT_TRUE(add4);
    EXPECT_TRUE(rm3);
  }

  // The CLI sees the same cluster.
  ASSERT_TRUE(cluster_->WaitReady(leader));
  auto nodes = RunCommand({BinDir() + "/gojodb", "--addr", cluster_->GrpcAddr(leader % 3 + 1),
                           "--output", "json", "node", "list"});
  ASSERT_EQ(nodes.status, 0) << nodes.err;
  auto j = json::parse(nodes.out, nullptr, false);
  ASSERT_TRUE(j.contains("nodes")) << nodes.out;
  std::map<uint64_t, std::string> liveness;
  for (const auto& n : j["nodes"]) {
    liveness[n.value("id", uint64_t{0})] = n.value("liveness", "");
  }
  EXPECT_EQ(liveness[3], "dead") << nodes.out;
  auto shards =
      RunCommand({BinDir() + "/gojodb", "--addr", cluster_->GrpcAddr(1), "shard", "list"});
  EXPECT_EQ(shards.status, 0) << shards.err;
  EXPECT_NE(shards.out.find("1,2,4"), std::string::npos) << shards.out;
  auto missing = RunCommand(
      {BinDir() + "/gojodb", "--addr", cluster_->GrpcAddr(2), "node", "decommission", "77"});
  EXPECT_EQ(missing.status, 1) << missing.out << missing.err;
  auto status =
      RunCommand({BinDir() + "/gojodb", "--addr", cluster_->GrpcAddr(3), "cluster", "status"});
  EXPECT_EQ(status.status, 0) << status.err;
  EXPECT_NE(status.out.find("cluster"), std::string::npos) << status.out;
}

}  // namespace
}  // namespace gojodb::testing
