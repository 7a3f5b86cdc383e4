// An injectable wall clock, so that time-dependent logic replays in tests.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace gojodb {

class Clock {
 public:
  virtual ~Clock() = default;
  // Milliseconds since the Unix epoch.
  virtual uint64_t NowMillis() = 0;
};

class SystemClock final : public Clock {
 public:
  uint64_t NowMillis() override {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count());
  }
  static SystemClock* Default() {
    static SystemClock clock;
    return &clock;
  }
};

// A clock that moves only when told to. Thread-safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(uint64_t now_ms) : now_(now_ms) {}
  uint64_t NowMillis() override { return now_.load(); }
  void Set(uint64_t now_ms) { now_.store(now_ms); }
  void Advance(uint64_t ms) { now_.fetch_add(ms); }

 private:
  std::atomic<uint64_t> now_;
};

}  // namespace gojodb
