#include "tools/bench/workload.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>

namespace gojodb::bench {

std::string_view OpTypeName(OpType type) {
  switch (type) {
    case OpType::kRead:
      return "READ";
    case OpType::kUpdate:
      return "UPDATE";
    case OpType::kInsert:
      return "INSERT";
    case OpType::kScan:
      return "SCAN";
    case OpType::kReadModifyWrite:
      return "READ_MODIFY_WRITE";
    case OpType::kTransfer:
      return "TRANSFER";
  }
  return "?";
}

std::string_view DistributionName(Distribution d) {
  switch (d) {
    case Distribution::kZipfian:
      return "zipfian";
    case Distribution::kUniform:
      return "uniform";
    case Distribution::kLatest:
      return "latest";
  }
  return "?";
}

std::optional<Distribution> ParseDistribution(std::string_view name) {
  if (name == "zipfian") return Distribution::kZipfian;
  if (name == "uniform") return Distribution::kUniform;
  if (name == "latest") return Distribution::kLatest;
  return std::nullopt;
}

Result<WorkloadSpec> WorkloadByName(std::string_view name) {
  WorkloadSpec w;
  w.name = std::string(name);
  if (name == "a") {
    w.description = "update heavy: 50% read, 50% update";
    w.read = 0.5;
    w.update = 0.5;
  } else if (name == "b") {
    w.description = "read mostly: 95% read, 5% update";
    w.read = 0.95;
    w.update = 0.05;
  } else if (name == "c") {
    w.description = "read only: 100% read";
    w.read = 1.0;
  } else if (name == "d") {
    w.description = "read latest: 95% read, 5% insert";
    w.read = 0.95;
    w.insert = 0.05;
    w.distribution = Distribution::kLatest;
  } else if (name == "e") {
    w.description = "short ranges: 95% scan (1-100 rows), 5% insert";
    w.scan = 0.95;
    w.insert = 0.05;
  } else if (name == "f") {
    w.description = "read-modify-write: 50% read, 50% read-modify-write";
    w.read = 0.5;
    w.read_modify_write = 0.5;
  } else if (name == "write") {
    w.description = "write only: 100% update";
    w.update = 1.0;
  } else if (name == "transfer") {
    w.description = "transactions: move 1 between two distinct records' balances";
    w.transfer = 1.0;
    w.distribution = Distribution::kUniform;
  } else if (name == "load") {
    w.description = "load phase only: insert every record once";
  } else {
    return Status::InvalidArgument("unknown workload '" + std::string(name) +
                                   "' (expected a, b, c, d, e, f, write, transfer or load)");
  }
  return w;
}

std::string KeyName(uint64_t index) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "user%019" PRIu64, FnvHash64(index));
  return buf;
}

WorkloadState::WorkloadState(const WorkloadSpec& spec, uint64_t record_count,
                             uint64_t operation_count)
    : spec_(spec),
      record_count_(record_count),
      zipfian_range_(std::max<uint64_t>(
          1, record_count +
                 static_cast<uint64_t>(static_cast<double>(operation_count) * spec.insert * 2))),
      inserts_(record_count) {
  if (spec_.distribution == Distribution::kLatest && record_count_ > 0) {
    latest_zetan_ = ZipfianGenerator::Zeta(0, record_count_, ZipfianGenerator::kZipfianConstant, 0);
  }
}

OperationStream::OperationStream(WorkloadState* state, uint64_t seed) : state_(state), rng_(seed) {
  const WorkloadSpec& s = state_->spec();
  assert(!s.load_only());
  ops_.Add(OpType::kRead, s.read);
  ops_.Add(OpType::kUpdate, s.update);
  ops_.Add(OpType::kInsert, s.insert);
  ops_.Add(OpType::kScan, s.scan);
  ops_.Add(OpType::kReadModifyWrite, s.read_modify_write);
  ops_.Add(OpType::kTransfer, s.transfer);
  switch (s.distribution) {
    case Distribution::kZipfian:
      zipfian_ = std::make_unique<ScrambledZipfianGenerator>(0, state_->zipfian_range() - 1);
      break;
    case Distribution::kLatest: {
      const uint64_t n = std::max<uint64_t>(state_->record_count(), 1);
      const double zetan = state_->record_count() > 0 ? state_->latest_zetan() : 1.0;
      latest_ = std::make_unique<SkewedLatestGenerator>(
          &state_->inserts(),
          ZipfianGenerator(0, n - 1, ZipfianGenerator::kZipfianConstant, zetan));
      break;
    }
    case Distribution::kUniform:
      break;
  }
}

OperationStream::~OperationStream() = default;

uint64_t OperationStream::NextExistingIndex() {
  const uint64_t limit = state_->inserts().Limit();
  // Nothing exists yet: index 0 will be reported as not found.
  if (limit == 0) return 0;
  switch (state_->spec().distribution) {
    case Distribution::kUniform:
      return rng_.Uniform(limit);
    case Distribution::kLatest:
      return latest_->Next(rng_);
    case Distribution::kZipfian: {
      // The range leaves room for inserts; redraw until the record exists (YCSB does
      // the same). Redraws are rare when records were loaded first: the range is the
      // records plus twice the expected inserts. Without them (say, an empty store),
      // fall back to uniform rather than spin.
      for (int attempt = 0; attempt < 64; ++attempt) {
        const uint64_t i = zipfian_->Next(rng_);
        if (i < limit) return i;
      }
      return rng_.Uniform(limit);
    }
  }
  return 0;
}

Operation OperationStream::Next() {
  Operation op;
  op.type = ops_.Next(rng_);
  if (op.type == OpType::kInsert) {
    op.index = state_->inserts().Next();
    return op;
  }
  op.index = NextExistingIndex();
  if (op.type == OpType::kScan) {
    const WorkloadSpec& s = state_->spec();
    op.scan_length = s.min_scan_length + rng_.Uniform(s.max_scan_length - s.min_scan_length + 1);
  }
  if (op.type == OpType::kTransfer) {
    // Another record; with a single record there is none, and the transfer is to itself.
    for (int attempt = 0; attempt < 64; ++attempt) {
      op.other = NextExistingIndex();
      if (op.other != op.index) break;
    }
  }
  return op;
}

std::string BalanceValue(int64_t balance, const std::string& padding) {
  std::string out = std::to_string(balance);
  out.push_back(' ');
  out.append(padding);
  return out;
}

int64_t ParseBalance(std::string_view value) {
  int64_t v = 0;
  bool negative = false;
  size_t i = 0;
  if (i < value.size() && value[i] == '-') {
    negative = true;
    ++i;
  }
  for (; i < value.size() && value[i] >= '0' && value[i] <= '9' && v < (int64_t{1} << 58); ++i) {
    v = v * 10 + (value[i] - '0');
  }
  return negative ? -v : v;
}

uint64_t ThreadSeed(uint64_t seed, uint64_t phase, uint64_t thread) {
  uint64_t state = seed;
  uint64_t a = SplitMix64(&state);
  state = a ^ (phase * 0xD1B54A32D192ED03ull);
  uint64_t b = SplitMix64(&state);
  state = b ^ (thread * 0x9E3779B97F4A7C15ull);
  return SplitMix64(&state);
}

}  // namespace gojodb::bench
