// tools/bench: the random generators of the YCSB core workload.
//
// Every generator draws from an Rng passed in by the caller, so one thread's stream of
// keys and operations is a pure function of its seed (plus, for workloads that insert,
// the shared AcknowledgedCounter). The algorithms follow YCSB's generator package:
//   ZipfianGenerator           Gray et al., "Quickly Generating Billion-Record Synthetic
//                              Databases" (SIGMOD 1994); item 0 is the most popular.
//   ScrambledZipfianGenerator  zipfian over 10^10 items, hashed into the key range, so
//                              the popular items are spread over the keyspace.
//   SkewedLatestGenerator      zipfian over "how far back from the newest insert".
//   UniformGenerator           uniform over a range.
//   AcknowledgedCounter        insert sequence whose readable limit moves only over
//                              inserts that completed, so reads never pick a key that
//                              is still being written.
// Not thread-safe unless stated: each thread owns its generators and its Rng.
#pragma once

#include <algorithm>
#include <atomic>
#include <bit>
#include <cassert>
#include <cmath>
#include <cstdint>
#include <mutex>
#include <set>
#include <string_view>
#include <utility>
#include <vector>

namespace gojodb::bench {

// splitmix64 step: advances *state and returns the next output. Seeds Rng and derives
// independent per-thread seeds from one --seed.
inline uint64_t SplitMix64(uint64_t* state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// xoshiro256**. Used instead of <random> because the std distributions are
// implementation-defined: this yields the same stream on every platform and compiler.
class Rng {
 public:
  explicit Rng(uint64_t seed) {
    uint64_t sm = seed;
    for (auto& w : s_) w = SplitMix64(&sm);
  }

  uint64_t Next() {
    const uint64_t result = std::rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = std::rotl(s_[3], 45);
    return result;
  }

  // Uniform in [0, 1), 53 bits.
  double NextDouble() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }

  // Uniform in [0, n), unbiased (Lemire's multiply-and-reject). REQUIRES: n > 0.
  uint64_t Uniform(uint64_t n) {
    assert(n > 0);
    unsigned __int128 m = static_cast<unsigned __int128>(Next()) * n;
    auto low = static_cast<uint64_t>(m);
    if (low < n) {
      const uint64_t threshold = (0 - n) % n;
      while (low < threshold) {
        m = static_cast<unsigned __int128>(Next()) * n;
        low = static_cast<uint64_t>(m);
      }
    }
    return static_cast<uint64_t>(m >> 64);
  }

 private:
  uint64_t s_[4];
};

inline constexpr uint64_t kFnvOffsetBasis64 = 0xCBF29CE484222325ull;
inline constexpr uint64_t kFnvPrime64 = 1099511628211ull;

// FNV-1a, 64 bits, over bytes.
inline uint64_t Fnv1a64(std::string_view bytes) {
  uint64_t h = kFnvOffsetBasis64;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= kFnvPrime64;
  }
  return h;
}

// YCSB's Utils.fnvhash64: FNV-1a over the 8 bytes of v, least significant first, then
// the absolute value as a signed 64-bit number (so the result is below 2^63, except for
// the one input whose hash is exactly -2^63).
inline uint64_t FnvHash64(uint64_t v) {
  uint64_t h = kFnvOffsetBasis64;
  for (int i = 0; i < 8; ++i) {
    h ^= v & 0xff;
    v >>= 8;
    h *= kFnvPrime64;
  }
  return static_cast<int64_t>(h) < 0 ? 0 - h : h;
}

// Uniform over [min, max].
class UniformGenerator {
 public:
  UniformGenerator(uint64_t min, uint64_t max) : min_(min), count_(max - min + 1) {
    assert(max >= min);
  }
  uint64_t Next(Rng& rng) { return min_ + rng.Uniform(count_); }

 private:
  uint64_t min_;
  uint64_t count_;
};

// Zipfian over [min, min + item_count): item min is the most popular, with probability
// 1 / zeta(item_count, theta). The item count may grow between draws (Next(rng, n));
// zeta is then extended incrementally, so growth costs O(new items).
class ZipfianGenerator {
 public:
  static constexpr double kZipfianConstant = 0.99;

  // zeta(n, theta) = sum_{i=1..n} 1 / i^theta, computed as
  // initial_sum + sum over i in [start, n) of 1 / (i + 1)^theta.
  static double Zeta(uint64_t start, uint64_t n, double theta, double initial_sum) {
    double sum = initial_sum;
    for (uint64_t i = start; i < n; ++i) sum += 1.0 / std::pow(static_cast<double>(i + 1), theta);
    return sum;
  }

  // Items [min, max]; computes zeta, O(max - min).
  ZipfianGenerator(uint64_t min, uint64_t max, double theta = kZipfianConstant)
      : ZipfianGenerator(min, max, theta, Zeta(0, max - min + 1, theta, 0)) {}

  // Items [min, max] with zeta(max - min + 1, theta) already known (precomputed once and
  // shared by many generators, or a published constant).
  ZipfianGenerator(uint64_t min, uint64_t max, double theta, double zetan)
      : base_(min), theta_(theta) {
    assert(max >= min);
    assert(theta > 0 && theta < 1);
    alpha_ = 1.0 / (1.0 - theta_);
    zeta2theta_ = Zeta(0, 2, theta_, 0);
    half_pow_theta_ = std::pow(0.5, theta_);
    SetZeta(max - min + 1, zetan);
  }

  uint64_t item_count() const { return count_for_zeta_; }
  double zetan() const { return zetan_; }

  uint64_t Next(Rng& rng) { return Next(rng, count_for_zeta_); }

  // A draw over [min, min + item_count). REQUIRES: item_count > 0.
  uint64_t Next(Rng& rng, uint64_t item_count) {
    assert(item_count > 0);
    if (item_count != count_for_zeta_) {
      const double z = item_count > count_for_zeta_
                           ? Zeta(count_for_zeta_, item_count, theta_, zetan_)
                           : Zeta(0, item_count, theta_, 0);
      SetZeta(item_count, z);
    }
    const double u = rng.NextDouble();
    const double uz = u * zetan_;
    if (uz < 1.0) return base_;
    if (uz < 1.0 + half_pow_theta_) return base_ + 1;
    const auto offset = static_cast<uint64_t>(static_cast<double>(item_count) *
                                              std::pow(eta_ * u - eta_ + 1, alpha_));
    return base_ + std::min(offset, item_count - 1);
  }

 private:
  void SetZeta(uint64_t item_count, double zetan) {
    count_for_zeta_ = item_count;
    zetan_ = zetan;
    eta_ = (1 - std::pow(2.0 / static_cast<double>(item_count), 1 - theta_)) /
           (1 - zeta2theta_ / zetan_);
  }

  uint64_t base_;
  double theta_;
  double alpha_ = 0;
  double zeta2theta_ = 0;
  double half_pow_theta_ = 0;
  uint64_t count_for_zeta_ = 0;
  double zetan_ = 0;
  double eta_ = 0;
};

// Zipfian popularity with the popular items scattered over [min, max]: draws a zipfian
// rank among 10^10 items and hashes it into the range. As in YCSB the constant is fixed
// at 0.99, whose zeta over 10^10 items is precomputed.
class ScrambledZipfianGenerator {
 public:
  static constexpr uint64_t kItemCount = 10'000'000'000ull;
  static constexpr double kZetan = 26.46902820178302;  // zeta(kItemCount, 0.99)

  ScrambledZipfianGenerator(uint64_t min, uint64_t max)
      : min_(min),
        count_(max - min + 1),
        gen_(0, kItemCount - 1, ZipfianGenerator::kZipfianConstant, kZetan) {
    assert(max >= min);
  }

  uint64_t Next(Rng& rng) { return min_ + FnvHash64(gen_.Next(rng)) % count_; }

 private:
  uint64_t min_;
  uint64_t count_;
  ZipfianGenerator gen_;
};

// The insert sequence of a run, shared by all its threads. Next() hands out indexes;
// Acknowledge(i) marks index i as written; Limit() is the first index not yet known to
// be written, so every index below it exists. Thread-safe.
class AcknowledgedCounter {
 public:
  explicit AcknowledgedCounter(uint64_t start) : next_(start), limit_(start) {}

  uint64_t Next() { return next_.fetch_add(1, std::memory_order_relaxed); }

  // REQUIRES: i was returned by Next() and is acknowledged once.
  void Acknowledge(uint64_t i) {
    std::lock_guard lock(mu_);
    uint64_t limit = limit_.load(std::memory_order_relaxed);
    if (i != limit) {
      done_.insert(i);
      return;
    }
    ++limit;
    while (!done_.empty() && *done_.begin() == limit) {
      done_.erase(done_.begin());
      ++limit;
    }
    limit_.store(limit, std::memory_order_release);
  }

  uint64_t Limit() const { return limit_.load(std::memory_order_acquire); }

 private:
  std::atomic<uint64_t> next_;
  std::atomic<uint64_t> limit_;
  std::mutex mu_;
  std::set<uint64_t> done_;  // acknowledged indexes above limit_; guarded by mu_
};

// Skewed towards the newest acknowledged insert: draws index Limit() - 1 - z, with z
// zipfian over [0, Limit()). REQUIRES: basis->Limit() > 0 at each draw.
class SkewedLatestGenerator {
 public:
  // `basis` is not owned and must outlive the generator. `zipfian` should start at 0;
  // its item count is moved to basis->Limit() at each draw.
  SkewedLatestGenerator(const AcknowledgedCounter* basis, ZipfianGenerator zipfian)
      : basis_(basis), zipfian_(std::move(zipfian)) {}

  uint64_t Next(Rng& rng) {
    const uint64_t n = basis_->Limit();
    assert(n > 0);
    return n - 1 - zipfian_.Next(rng, n);
  }

 private:
  const AcknowledgedCounter* basis_;
  ZipfianGenerator zipfian_;
};

// Picks one of several values with given weights (the operation mix).
template <typename T>
class DiscreteGenerator {
 public:
  // Weights need not sum to 1; zero weights are never picked.
  void Add(T value, double weight) {
    if (weight <= 0) return;
    total_ += weight;
    choices_.emplace_back(total_, std::move(value));
  }

  bool empty() const { return choices_.empty(); }

  // REQUIRES: !empty().
  const T& Next(Rng& rng) const {
    assert(!choices_.empty());
    const double x = rng.NextDouble() * total_;
    for (const auto& [cumulative, value] : choices_) {
      if (x < cumulative) return value;
    }
    return choices_.back().second;
  }

 private:
  double total_ = 0;
  std::vector<std::pair<double, T>> choices_;  // (cumulative weight, value)
};

}  // namespace gojodb::bench
