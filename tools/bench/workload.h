// tools/bench: the YCSB core workloads and the per-thread operation streams they yield.
//
//   a      50% read, 50% update                         zipfian
//   b      95% read, 5% update                          zipfian
//   c      100% read                                    zipfian
//   d      95% read, 5% insert                          latest
//   e      95% scan (length uniform in 1..100), 5% insert zipfian
//   f      50% read, 50% read-modify-write              zipfian
//   write  100% update                                  zipfian
//   transfer  100% transfer: a transaction moving 1 from one record's balance to
//          another's (two distinct records)                uniform
//   load   the load phase only: insert records 0..N-1
//
// Records are numbered 0..N-1 and named by KeyName(). "zipfian" is YCSB's scrambled
// zipfian (constant 0.99), "latest" its skewed-latest, "uniform" uniform over the
// records that exist.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "internal/status.h"
#include "tools/bench/generators.h"

namespace gojodb::bench {

enum class OpType : int { kRead = 0, kUpdate, kInsert, kScan, kReadModifyWrite, kTransfer };
inline constexpr int kNumOpTypes = 6;

// "READ", "UPDATE", "INSERT", "SCAN", "READ_MODIFY_WRITE", "TRANSFER".
std::string_view OpTypeName(OpType type);

enum class Distribution { kZipfian, kUniform, kLatest };
std::string_view DistributionName(Distribution d);
std::optional<Distribution> ParseDistribution(std::string_view name);

struct WorkloadSpec {
  std::string name;
  std::string description;
  // Operation mix; weights sum to 1 (all zero for "load").
  double read = 0;
  double update = 0;
  double insert = 0;
  double scan = 0;
  double read_modify_write = 0;
  double transfer = 0;
  Distribution distribution = Distribution::kZipfian;
  uint64_t min_scan_length = 1;
  uint64_t max_scan_length = 100;

  bool load_only() const { return name == "load"; }
};

// "a".."f", "write", "transfer" or "load"; INVALID_ARGUMENT for anything else.
Result<WorkloadSpec> WorkloadByName(std::string_view name);

// The key of record `index`: "user" + YCSB's FnvHash64(index), zero-padded to 19
// digits so that every key is 23 bytes.
std::string KeyName(uint64_t index);

struct Operation {
  OpType type = OpType::kRead;
  uint64_t index = 0;        // record index (for an insert: a fresh one; acknowledge it)
  uint64_t scan_length = 0;  // rows, for kScan
  uint64_t other = 0;        // kTransfer: the record credited (index is debited)
};

// State shared by every thread of one run phase. Thread-safe.
class WorkloadState {
 public:
  // `record_count` records (0..record_count-1) exist before the phase; it will run about
  // `operation_count` operations in all.
  WorkloadState(const WorkloadSpec& spec, uint64_t record_count, uint64_t operation_count);

  const WorkloadSpec& spec() const { return spec_; }
  uint64_t record_count() const { return record_count_; }
  // Inserts draw from here; reads choose among indexes below inserts().Limit().
  AcknowledgedCounter& inserts() { return inserts_; }
  // The zipfian key range: records plus room for the expected inserts (as YCSB).
  uint64_t zipfian_range() const { return zipfian_range_; }
  // zeta(record_count, 0.99), computed once for every thread's "latest" generator.
  double latest_zetan() const { return latest_zetan_; }

 private:
  WorkloadSpec spec_;
  uint64_t record_count_;
  uint64_t zipfian_range_;
  double latest_zetan_ = 0;
  AcknowledgedCounter inserts_;
};

// One thread's operations, drawn from its own Rng. Given the same seed and the same
// sequence of acknowledged inserts, the stream is the same. Not thread-safe.
class OperationStream {
 public:
  // `state` is not owned and must outlive the stream. REQUIRES: the spec is not "load".
  OperationStream(WorkloadState* state, uint64_t seed);
  ~OperationStream();

  Operation Next();
  Rng& rng() { return rng_; }

 private:
  uint64_t NextExistingIndex();

  WorkloadState* state_;
  Rng rng_;
  DiscreteGenerator<OpType> ops_;
  std::unique_ptr<ScrambledZipfianGenerator> zipfian_;
  std::unique_ptr<SkewedLatestGenerator> latest_;
};

// "<balance> <padding>": the value a transfer writes. ParseBalance reads the leading
// decimal number of a value back (0 if it has none, as a value the load phase wrote).
std::string BalanceValue(int64_t balance, const std::string& padding);
int64_t ParseBalance(std::string_view value);

// Derives the seed of thread `thread` (and phase `phase`) from the run's --seed, so the
// threads' streams are independent of one another.
uint64_t ThreadSeed(uint64_t seed, uint64_t phase, uint64_t thread);

}  // namespace gojodb::bench
