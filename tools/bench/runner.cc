#include "tools/bench/runner.h"

#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <latch>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace gojodb::bench {
namespace {

using Clock = std::chrono::steady_clock;

// Random printable bytes, as YCSB's values, drawn from the thread's Rng.
void FillValue(Rng& rng, size_t size, std::string* out) {
  out->resize(size);
  size_t i = 0;
  while (i < size) {
    uint64_t r = rng.Next();
    for (int b = 0; b < 8 && i < size; ++b, r >>= 8)
      (*out)[i++] = static_cast<char>(' ' + (r & 0xff) % 95);
  }
}

// Yields a thread's next operation; false when the thread is done.
using OperationSource = std::function<bool(Operation*)>;
// Makes thread t's source.
using SourceFactory = std::function<OperationSource(int thread, Rng* rng)>;

double ProcessCpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto secs = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return secs(u.ru_utime) + secs(u.ru_stime);
}

struct alignas(64) ThreadSlot {
  std::atomic<uint64_t> done{0};  // written by its thread only, read by the progress loop
  Clock::time_point finished;
};

struct Shared {
  const RunConfig* config;
  AcknowledgedCounter* inserts = nullptr;  // the run phase's insert sequence
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> failures{0};
  std::mutex mu;
  std::string first_error;  // guarded by mu
  std::string stop_reason;  // guarded by mu

  void Stop(const std::string& reason) {
    std::lock_guard lock(mu);
    if (stop_reason.empty()) stop_reason = reason;
    stop.store(true, std::memory_order_relaxed);
  }
  void Fail(const std::string& what) {
    {
      std::lock_guard lock(mu);
      if (first_error.empty()) first_error = what;
    }
    if (failures.fetch_add(1, std::memory_order_relaxed) + 1 > config->max_failures) {
      Stop("more than " + std::to_string(config->max_failures) + " operations failed");
    }
  }
};

OpResult Execute(Connection& conn, const Operation& op, Rng& rng, size_t value_size,
                 std::string* value) {
  const std::string key = KeyName(op.index);
  switch (op.type) {
    case OpType::kRead:
      return conn.Read(key);
    case OpType::kUpdate:
      FillValue(rng, value_size, value);
      return conn.Update(key, *value);
    case OpType::kInsert:
      FillValue(rng, value_size, value);
      return conn.Insert(key, *value);
    case OpType::kScan:
      return conn.Scan(key, op.scan_length);
    case OpType::kReadModifyWrite:
      FillValue(rng, value_size, value);
      return conn.ReadModifyWrite(key, *value);
    case OpType::kTransfer:
      // The value keeps its size: the balance and a space replace its first bytes.
      FillValue(rng, value_size > 21 ? value_size - 21 : 0, value);
      return conn.Transfer(key, KeyName(op.other), 1, *value);
  }
  return OpResult::Error("unknown operation");
}

void ThreadMain(int t, Target& target, Shared& shared, const SourceFactory& factory, uint64_t phase,
                std::latch& ready, ThreadSlot& slot, std::array<OpStats, kNumOpTypes>& stats) {
  Rng rng(ThreadSeed(shared.config->seed, phase, static_cast<uint64_t>(t)));
  OperationSource next = factory(t, &rng);
  std::unique_ptr<Connection> conn = target.Connect(t);
  std::string value;
  ready.arrive_and_wait();
  const Clock::time_point deadline =
      shared.config->max_seconds > 0
          ? Clock::now() + std::chrono::duration_cast<Clock::duration>(
                               std::chrono::duration<double>(shared.config->max_seconds))
          : Clock::time_point::max();

  Operation op;
  uint64_t done = 0;
  while (!shared.stop.load(std::memory_order_relaxed) && next(&op)) {
    const auto start = Clock::now();
    OpResult r = Execute(*conn, op, rng, shared.config->value_size, &value);
    const auto end = Clock::now();
    OpStats& s = stats[static_cast<int>(op.type)];
    s.latency.Record(static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(end - start).count()));
    switch (r.outcome) {
      case Outcome::kOk:
        ++s.ok;
        if (op.type == OpType::kInsert && shared.inserts) shared.inserts->Acknowledge(op.index);
        break;
      case Outcome::kConflict:
        ++s.conflicts;
        break;
      case Outcome::kNotFound:
        ++s.not_found;
        shared.Fail(std::string(OpTypeName(op.type)) + " " + KeyName(op.index) +
                    ": not found (was the load phase run? see --load)");
        break;
      case Outcome::kError:
        ++s.errors;
        shared.Fail(std::string(OpTypeName(op.type)) + ": " + r.error);
        break;
    }
    slot.done.store(++done, std::memory_order_relaxed);
    if (end >= deadline) shared.Stop("time limit reached");
  }
  slot.finished = Clock::now();
}

PhaseResult RunPhase(const std::string& name, uint64_t phase, Target& target,
                     const RunConfig& config, AcknowledgedCounter* inserts,
                     const SourceFactory& factory, uint64_t expected_ops) {
  const int n = std::max(1, config.threads);
  Shared shared;
  shared.config = &config;
  shared.inserts = inserts;
  std::vector<ThreadSlot> slots(static_cast<size_t>(n));
  std::vector<std::array<OpStats, kNumOpTypes>> stats(static_cast<size_t>(n));
  std::latch ready(n + 1);

  std::vector<std::thread> threads;
  threads.reserve(static_cast<size_t>(n));
  for (int t = 0; t < n; ++t) {
    threads.emplace_back(ThreadMain, t, std::ref(target), std::ref(shared), std::cref(factory),
                         phase, std::ref(ready), std::ref(slots[t]), std::ref(stats[t]));
  }
  ready.arrive_and_wait();
  const auto start = Clock::now();
  const double cpu_start = ProcessCpuSeconds();

  if (config.progress_seconds > 0) {
    // Progress lines until every thread has finished.
    auto next_report = start + std::chrono::duration_cast<Clock::duration>(
                                   std::chrono::duration<double>(config.progress_seconds));
    for (;;) {
      uint64_t done = 0;
      for (auto& s : slots) done += s.done.load(std::memory_order_relaxed);
      if (done >= expected_ops || shared.stop.load(std::memory_order_relaxed)) break;
      const auto now = Clock::now();
      if (now >= next_report) {
        const double secs = std::chrono::duration<double>(now - start).count();
        std::fprintf(stderr, "[%s] %.1f s: %llu of %llu operations, %.0f ops/s, %llu failed\n",
                     name.c_str(), secs, static_cast<unsigned long long>(done),
                     static_cast<unsigned long long>(expected_ops), done / secs,
                     static_cast<unsigned long long>(shared.failures.load()));
        next_report += std::chrono::duration_cast<Clock::duration>(
            std::chrono::duration<double>(config.progress_seconds));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  for (auto& th : threads) th.join();

  PhaseResult result;
  result.phase = name;
  result.cpu_seconds = ProcessCpuSeconds() - cpu_start;
  Clock::time_point finish = start;
  for (auto& s : slots) finish = std::max(finish, s.finished);
  result.seconds = std::chrono::duration<double>(finish - start).count();
  for (auto& per_thread : stats) {
    for (int i = 0; i < kNumOpTypes; ++i) result.ops[i].Merge(per_thread[i]);
  }
  result.first_error = shared.first_error;
  result.stop_reason = shared.stop_reason;
  return result;
}

}  // namespace

void OpStats::Merge(const OpStats& other) {
  ok += other.ok;
  not_found += other.not_found;
  conflicts += other.conflicts;
  errors += other.errors;
  latency.Merge(other.latency);
}

OpStats PhaseResult::Overall() const {
  OpStats all;
  for (const auto& s : ops) all.Merge(s);
  return all;
}

uint64_t PhaseResult::failures() const {
  uint64_t n = 0;
  for (const auto& s : ops) n += s.failures();
  return n;
}

PhaseResult RunLoad(Target& target, const RunConfig& config) {
  std::atomic<uint64_t> next_record{0};
  const uint64_t records = config.records;
  SourceFactory factory = [&](int, Rng*) -> OperationSource {
    return [&next_record, records](Operation* op) {
      const uint64_t i = next_record.fetch_add(1, std::memory_order_relaxed);
      if (i >= records) return false;
      *op = Operation{OpType::kInsert, i, 0};
      return true;
    };
  };
  return RunPhase("load", 0, target, config, nullptr, factory, records);
}

PhaseResult RunWorkload(Target& target, const RunConfig& config) {
  WorkloadState state(config.spec, config.records, config.operations);
  const uint64_t n = static_cast<uint64_t>(std::max(1, config.threads));
  SourceFactory factory = [&](int t, Rng* rng) -> OperationSource {
    // Thread t runs its share of the operations; the first ones take the remainder.
    uint64_t quota = config.operations / n + (static_cast<uint64_t>(t) < config.operations % n);
    auto stream = std::make_shared<OperationStream>(&state, rng->Next());
    return [stream, quota](Operation* op) mutable {
      if (quota == 0) return false;
      --quota;
      *op = stream->Next();
      return true;
    };
  };
  return RunPhase("run", 1, target, config, &state.inserts(), factory, config.operations);
}

}  // namespace gojodb::bench
