// Crash safety: concurrent writers, SIGKILL at a random moment, restart; every
// acknowledged write is present with its last acknowledged value (or with a later
// value whose write was in flight at the kill). Repeated with different timings.
//   GOJODB_CRASH_ITERATIONS (default 20), GOJODB_CRASH_SEED (default 1)
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "pkg/client/client.h"
#include "tests/integration/standalone_server.h"

namespace gojodb::testing {
namespace {

int EnvInt(const char* name, int def) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : def;
}

struct KeyHistory {
  std::optional<std::string> acked;  // last acknowledged value
  std::set<std::string> maybe;       // attempted after it without an answer
};

TEST(CrashTest, AcknowledgedWritesSurviveSigkill) {
  const int iterations = EnvInt("GOJODB_CRASH_ITERATIONS", 20);
  const int seed = EnvInt("GOJODB_CRASH_SEED", 1);
  const std::string dir = TempDir("crash");
  StandaloneServer server(dir + "/data");
  std::map<std::string, KeyHistory> history;  // across all iterations
  std::mutex mu;

  for (int iter = 0; iter < iterations; ++iter) {
    SCOPED_TRACE("iteration " + std::to_string(iter) + " seed " + std::to_string(seed + iter));
    ASSERT_TRUE(server.Start()) << server.Log();
    std::mt19937 rng(seed + iter);
    const int kill_after_ms = 50 + static_cast<int>(rng() % 450);

    std::atomic<bool> stop{false};
    std::atomic<bool> killing{false};  // set before SIGKILL: later failures are expected
    std::atomic<int> acked_count{0};
    std::vector<std::thread> writers;
    for (int t = 0; t < 8; ++t) {
      writers.emplace_back([&, t, thread_seed = rng()] {
        auto c = client::Client::Connect({.addr = server.grpc_addr(), .timeout_ms = 3000});
        std::mt19937 r(thread_seed);
        for (int i = 0; !stop.load(); ++i) {
          std::string key = (r() % 2) ? "i" + std::to_string(iter) + "-t" + std::to_string(t) +
                                            "-k" + std::to_string(i)
                                      : "hot-t" + std::to_string(t) + "-" + std::to_string(r() % 4);
          std::string value =
              "it" + std::to_string(iter) + "-v" + std::to_string(i) + std::string(r() % 200, 'x');
          {
            std::lock_guard l(mu);
            history[key].maybe.insert(value);
          }
          auto w = (*c)->Put({.key = key, .value = value});
          std::lock_guard l(mu);
          if (w.ok()) {
            auto& h = history[key];
            h.acked = value;
            h.maybe.clear();  // writes of one key by one thread are sequential
            ++acked_count;
          }
          if (!w.ok() && !killing.load()) {
            ADD_FAILURE() << "write failed while the server was up: " << w.status().ToString();
            return;
          }
        }
      });
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(kill_after_ms));
    killing = true;
    server.process()->Signal(SIGKILL);
    ASSERT_EQ(server.process()->Wait(), 128 + SIGKILL);
    stop = true;
    for (auto& w : writers) w.join();
    ASSERT_GT(acked_count.load(), 0) << "no write was acknowledged before the kill";

    ASSERT_TRUE(server.Start()) << server.Log();
    auto c = client::Client::Connect({.addr = server.grpc_addr()});
    int checked = 0;
    for (auto& [key, h] : history) {
      auto got = (*c)->Get({.key = key});
      ASSERT_TRUE(got.ok()) << got.status().ToString();
      if (got->found && h.maybe.count(got->value)) {
        h.acked = got->value;  // an in-flight write landed: it is now the value to keep
      } else if (h.acked) {
        ASSERT_TRUE(got->found) << "acknowledged key lost: " << key;
        ASSERT_EQ(got->value.substr(0, 32), h.acked->substr(0, 32)) << "key " << key;
        ASSERT_EQ(got->value, *h.acked) << "key " << key;
      } else {
        ASSERT_FALSE(got->found) << "key " << key << " has a value nobody wrote";
      }
      h.maybe.clear();
      ++checked;
    }
    ASSERT_GT(checked, 0);
    server.process()->Signal(SIGKILL);  // the next iteration starts from a crash too
    server.process()->Wait();
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace gojodb::testing
