// tools/bench: a latency histogram with log-linear buckets, in the manner of
// HdrHistogram.
//
// Values (nanoseconds in gojodb-bench) below 2^kSubBucketBits are counted exactly; above,
// each power of two is split into 2^(kSubBucketBits - 1) equal buckets, so a reported
// value is at most 1/256 (0.4%) above the true one. Memory is fixed (about 115 KiB,
// allocated at the first sample) and independent of the number of samples, so each
// thread keeps its own histogram per operation type, records without locks, and the
// histograms are merged at the end.
// Not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace gojodb::bench {

class LatencyHistogram {
 public:
  static constexpr int kSubBucketBits = 9;

  LatencyHistogram();

  void Record(uint64_t value);
  // Adds every sample of `other` to this histogram.
  void Merge(const LatencyHistogram& other);

  uint64_t count() const { return count_; }
  // Exact extremes and mean of the recorded values; 0 when empty.
  uint64_t min() const { return count_ ? min_ : 0; }
  uint64_t max() const { return max_; }
  double mean() const;

  // The value at quantile q in [0, 1] (0.99 for p99): the upper end of the bucket
  // holding the ceil(q * count)-th smallest sample, capped at max(). 0 when empty.
  uint64_t ValueAtQuantile(double q) const;

  // Bucket geometry, exposed for tests.
  static size_t BucketIndex(uint64_t value);
  static uint64_t BucketLowest(size_t index);
  static uint64_t BucketHighest(size_t index);
  static size_t BucketCount();

 private:
  std::vector<uint64_t> counts_;  // BucketCount() entries, or empty before any sample
  uint64_t count_ = 0;
  uint64_t min_ = UINT64_MAX;
  uint64_t max_ = 0;
  long double sum_ = 0;
};

}  // namespace gojodb::bench
