// Striped row latches with two modes.
//
// Exclusive: for read-check-write sequences (conditional writes, request-id dedup).
// Shared: for blind writes, which may commit concurrently with each other (their
// versions are ordered by timestamp, not by arrival) but not with an exclusive holder,
// so a condition checked under an exclusive latch holds until that write commits, and
// every blind write that starts later gets a larger timestamp.
//
// Waiting exclusive holders are preferred over new shared ones, so a stream of blind
// writes to a hot row cannot starve a conditional write. Lock() takes the stripes of all
// keys in ascending stripe order, so callers cannot deadlock.
#pragma once

#include <algorithm>
#include <array>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string_view>
#include <vector>

namespace gojodb::kv {

class Latches {
 public:
  static constexpr size_t kStripes = 4096;

  class Guard {
   public:
    Guard(Latches* l, std::vector<size_t> stripes, bool exclusive)
        : l_(l), stripes_(std::move(stripes)), exclusive_(exclusive) {
      for (size_t s : stripes_) l_->stripes_[s].Acquire(exclusive_);
    }
    ~Guard() {
      for (auto it = stripes_.rbegin(); it != stripes_.rend(); ++it) {
        l_->stripes_[*it].Release(exclusive_);
      }
    }
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;

   private:
    Latches* l_;
    std::vector<size_t> stripes_;
    bool exclusive_;
  };

  // Holds the stripes of `keys` until the Guard is destroyed.
  Guard Lock(const std::vector<std::string_view>& keys, bool exclusive) {
    std::vector<size_t> stripes;
    stripes.reserve(keys.size());
    for (auto k : keys) stripes.push_back(std::hash<std::string_view>{}(k) % kStripes);
    std::sort(stripes.begin(), stripes.end());
    stripes.erase(std::unique(stripes.begin(), stripes.end()), stripes.end());
    return Guard(this, std::move(stripes), exclusive);
  }

 private:
  struct Stripe {
    std::mutex mu;
    std::condition_variable cv;
    int shared = 0;             // GUARDED_BY(mu)
    int exclusive_waiting = 0;  // GUARDED_BY(mu)
    bool exclusive = false;     // GUARDED_BY(mu)

    void Acquire(bool excl) {
      std::unique_lock lock(mu);
      if (excl) {
        ++exclusive_waiting;
        cv.wait(lock, [&] { return !exclusive && shared == 0; });
        --exclusive_waiting;
        exclusive = true;
      } else {
        cv.wait(lock, [&] { return !exclusive && exclusive_waiting == 0; });
        ++shared;
      }
    }
    void Release(bool excl) {
      std::lock_guard lock(mu);
      if (excl)
        exclusive = false;
      else
        --shared;
      if (!exclusive && shared == 0) cv.notify_all();
    }
  };
  std::array<Stripe, kStripes> stripes_;
};

}  // namespace gojodb::kv
