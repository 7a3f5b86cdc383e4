// Striped row latches: serialize read-check-write sequences on the same rows.
// Lock() takes the stripes of all given keys in ascending stripe order, so two callers
// can never deadlock.
#pragma once

#include <algorithm>
#include <array>
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
    Guard(Latches* l, std::vector<size_t> stripes) : l_(l), stripes_(std::move(stripes)) {
      for (size_t s : stripes_) l_->mu_[s].lock();
    }
    ~Guard() {
      for (auto it = stripes_.rbegin(); it != stripes_.rend(); ++it) l_->mu_[*it].unlock();
    }
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;

   private:
    Latches* l_;
    std::vector<size_t> stripes_;
  };

  // Locks the stripes of `keys` until the Guard is destroyed.
  Guard Lock(const std::vector<std::string_view>& keys) {
    std::vector<size_t> stripes;
    stripes.reserve(keys.size());
    for (auto k : keys) stripes.push_back(std::hash<std::string_view>{}(k) % kStripes);
    std::sort(stripes.begin(), stripes.end());
    stripes.erase(std::unique(stripes.begin(), stripes.end()), stripes.end());
    return Guard(this, std::move(stripes));
  }

 private:
  std::array<std::mutex, kStripes> mu_;
};

}  // namespace gojodb::kv
