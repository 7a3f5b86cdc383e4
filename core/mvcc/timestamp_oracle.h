// Timestamps: physical milliseconds << 18 | an 18-bit logical counter (hybrid).
//
// LocalTimestampOracle serves a single node (standalone mode). It never hands out the
// same timestamp twice and never goes back, across restarts and wall-clock steps
// backwards: before it hands out a timestamp whose physical part passes the persisted
// high-water mark, it durably raises the mark by `window_ms`; on restart it starts
// above the mark. The cluster's oracle lives in the controller and keeps the same
// contract through Raft.
#pragma once

#include <memory>
#include <mutex>

#include "core/mvcc/key_codec.h"
#include "core/storage_engine/engine.h"
#include "internal/clock.h"

namespace gojodb::mvcc {

class TimestampOracle {
 public:
  virtual ~TimestampOracle() = default;
  // A timestamp greater than every one handed out before.
  virtual Result<Timestamp> Next() = 0;
  // The greatest timestamp handed out so far (0 if none).
  virtual Timestamp Last() const = 0;
  // Ensures every later Next() returns a timestamp greater than `ts`.
  virtual Status AdvancePast(Timestamp ts) = 0;
  // A timestamp the source of truth handed out after this call began: greater than
  // every timestamp handed out anywhere before it (Next() may answer from a batch taken
  // earlier). An oracle without batches answers Next().
  virtual Result<Timestamp> NextFresh() { return Next(); }
};

class LocalTimestampOracle final : public TimestampOracle {
 public:
  // Loads the high-water mark from `engine` (meta column family). Neither pointer is
  // owned; both must outlive the oracle.
  static Result<std::unique_ptr<LocalTimestampOracle>> Open(storage::Engine* engine, Clock* clock,
                                                            uint64_t window_ms = 3000);

  Result<Timestamp> Next() override;
  Timestamp Last() const override;
  Status AdvancePast(Timestamp ts) override;

 private:
  LocalTimestampOracle(storage::Engine* engine, Clock* clock, uint64_t window_ms,
                       uint64_t high_water_ms);
  // REQUIRES: mu_ held. Durably raises the mark so that `physical_ms` may be used.
  Status Reserve(uint64_t physical_ms);

  storage::Engine* const engine_;
  Clock* const clock_;
  const uint64_t window_ms_;
  mutable std::mutex mu_;
  uint64_t high_water_ms_;  // GUARDED_BY(mu_): no handed-out timestamp has a larger physical part
  Timestamp last_ = 0;      // GUARDED_BY(mu_)
};

}  // namespace gojodb::mvcc
