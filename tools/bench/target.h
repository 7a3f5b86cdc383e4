// tools/bench: what a benchmark runs against. A Target is a GojoDB server reached over
// gRPC (server_target.h) or RocksDB opened in-process (rocksdb_target.h); each client
// thread gets its own Connection.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "internal/status.h"

namespace gojodb::bench {

enum class Outcome {
  kOk,
  kNotFound,  // a read or read-modify-write found no value for a key that should exist
  kConflict,  // a read-modify-write lost its conditional write to a concurrent writer
  kError,     // anything else: counted as a failure
};

struct OpResult {
  Outcome outcome = Outcome::kOk;
  std::string error;  // with kError: what failed

  static OpResult Ok() { return {}; }
  static OpResult NotFound() { return {Outcome::kNotFound, {}}; }
  static OpResult Conflict() { return {Outcome::kConflict, {}}; }
  static OpResult Error(std::string message) { return {Outcome::kError, std::move(message)}; }
};

// One client thread's handle. Used by one thread at a time.
class Connection {
 public:
  virtual ~Connection() = default;
  virtual OpResult Read(const std::string& key) = 0;
  // Overwrites the record's value.
  virtual OpResult Update(const std::string& key, const std::string& value) = 0;
  // Writes a new record.
  virtual OpResult Insert(const std::string& key, const std::string& value) = 0;
  // Reads up to `count` records in key order starting at `start`.
  virtual OpResult Scan(const std::string& start, uint64_t count) = 0;
  // Reads the record, then writes `value` unless it changed in between.
  virtual OpResult ReadModifyWrite(const std::string& key, const std::string& value) = 0;
  // In one transaction: subtracts `amount` from the balance of record `from` and adds it
  // to `to`'s. A record's balance is the decimal number its value starts with (0 if
  // none); the rest of the value (`padding`) is kept at the value size. kConflict: the
  // transaction was refused for a conflict and nothing applied.
  virtual OpResult Transfer(const std::string& from, const std::string& to, int64_t amount,
                            const std::string& padding) {
    return OpResult::Error("this target has no transactions");
  }
};

class Target {
 public:
  virtual ~Target() = default;
  // "server 127.0.0.1:7001 collection default" or "rocksdb /tmp/x sync=true".
  virtual std::string Describe() const = 0;
  // Connects or opens; called once before any Connect().
  virtual Status Open() = 0;
  // A connection for client thread `thread` (0-based). Thread-safe.
  virtual std::unique_ptr<Connection> Connect(int thread) = 0;
};

}  // namespace gojodb::bench
