#include "core/kv/latches.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

namespace gojodb::kv {
namespace {

using namespace std::chrono_literals;

// Holds a latch on its own thread until Release().
class Holder {
 public:
  Holder(Latches* l, std::string_view key, bool exclusive) {
    t_ = std::thread([=, this] {
      auto g = l->Lock({key}, exclusive);
      held_ = true;
      while (!release_) std::this_thread::sleep_for(1ms);
    });
    while (!held_) std::this_thread::sleep_for(1ms);
  }
  void Release() {
    release_ = true;
    if (t_.joinable()) t_.join();
  }
  ~Holder() { Release(); }

 private:
  std::atomic<bool> held_{false}, release_{false};
  std::thread t_;
};

TEST(LatchesTest, SharedHoldersRunTogether) {
  Latches latches;
  Holder a(&latches, "row", false);
  std::atomic<bool> got{false};
  std::thread t([&] {
    auto b = latches.Lock({"row"}, false);  // must not wait for `a`
    got = true;
  });
  t.join();  // would hang if shared holders excluded each other
  EXPECT_TRUE(got);
}

TEST(LatchesTest, ExclusiveWaitsForSharedAndNewSharedWaitsForExclusive) {
  Latches latches;
  Holder shared(&latches, "row", false);
  std::atomic<int> order{0};
  std::atomic<int> exclusive_at{-1}, late_shared_at{-1};
  std::thread excl([&] {
    auto g = latches.Lock({"row"}, true);
    exclusive_at = order++;
  });
  std::this_thread::sleep_for(50ms);  // the exclusive request is now waiting
  EXPECT_EQ(exclusive_at.load(), -1) << "exclusive acquired while a shared holder existed";
  std::thread late([&] {
    auto g = latches.Lock({"row"}, false);
    late_shared_at = order++;
  });
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(late_shared_at.load(), -1) << "a new shared holder overtook a waiting exclusive";
  shared.Release();
  excl.join();
  late.join();
  EXPECT_EQ(exclusive_at.load(), 0);
  EXPECT_EQ(late_shared_at.load(), 1);
}

TEST(LatchesTest, BatchesLockingOverlappingRowsInAnyOrderDoNotDeadlock) {
  Latches latches;
  std::vector<std::thread> threads;
  std::atomic<int> done{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) {
        std::vector<std::string_view> keys = t % 2 ? std::vector<std::string_view>{"a", "b", "c"}
                                                   : std::vector<std::string_view>{"c", "b", "a"};
        auto g = latches.Lock(keys, (i + t) % 3 == 0);
      }
      ++done;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(done.load(), 4);
}

}  // namespace
}  // namespace gojodb::kv
