#include "tools/bench/histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace gojodb::bench {
namespace {

constexpr uint64_t kSub = uint64_t{1} << LatencyHistogram::kSubBucketBits;  // exact values
constexpr uint64_t kHalf = kSub / 2;  // buckets per power of two above kSub

}  // namespace

LatencyHistogram::LatencyHistogram() = default;

size_t LatencyHistogram::BucketCount() {
  // The largest value, 2^64 - 1, has its top bit at 63: shift 63 - (kSubBucketBits - 1).
  return BucketIndex(UINT64_MAX) + 1;
}

size_t LatencyHistogram::BucketIndex(uint64_t value) {
  if (value < kSub) return static_cast<size_t>(value);
  const int top_bit = 63 - std::countl_zero(value);
  const int shift = top_bit - (kSubBucketBits - 1);  // >= 1
  const uint64_t sub = value >> shift;               // in [kHalf, kSub)
  return static_cast<size_t>(kSub + static_cast<uint64_t>(shift - 1) * kHalf + (sub - kHalf));
}

uint64_t LatencyHistogram::BucketLowest(size_t index) {
  if (index < kSub) return index;
  const uint64_t k = index - kSub;
  const uint64_t shift = k / kHalf + 1;
  const uint64_t sub = k % kHalf + kHalf;
  return sub << shift;
}

uint64_t LatencyHistogram::BucketHighest(size_t index) {
  if (index < kSub) return index;
  const uint64_t k = index - kSub;
  const uint64_t shift = k / kHalf + 1;
  const uint64_t sub = k % kHalf + kHalf;
  // For the very last bucket (sub + 1) << shift wraps to 0 and the result is 2^64 - 1.
  return ((sub + 1) << shift) - 1;
}

void LatencyHistogram::Record(uint64_t value) {
  if (counts_.empty()) counts_.assign(BucketCount(), 0);
  ++counts_[BucketIndex(value)];
  ++count_;
  min_ = std::min(min_, value);
  max_ = std::max(max_, value);
  sum_ += value;
}

void LatencyHistogram::Merge(const LatencyHistogram& other) {
  if (other.count_ == 0) return;
  if (counts_.empty()) counts_.assign(BucketCount(), 0);
  for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
  sum_ += other.sum_;
}

double LatencyHistogram::mean() const { return count_ ? static_cast<double>(sum_ / count_) : 0.0; }

uint64_t LatencyHistogram::ValueAtQuantile(double q) const {
  if (count_ == 0) return 0;
  q = std::clamp(q, 0.0, 1.0);
  auto rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(count_)));
  rank = std::clamp<uint64_t>(rank, 1, count_);
  uint64_t seen = 0;
  for (size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank) return std::min(BucketHighest(i), max_);
  }
  return max_;
}

}  // namespace gojodb::bench
