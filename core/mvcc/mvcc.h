// Multi-version rows over a storage Engine.
//
// Every write of a row stores a new version under EncodeVersionKey(row_key, commit_ts)
// in the `write` column family: 'P' + value for a put, 'D' for a delete (tombstone);
// a transaction's commit also names its start timestamp: 'p' start_ts:u64be + value,
// 'd' start_ts:u64be (docs/architecture/transactions.md). Readers treat both alike.
// A read at timestamp T sees, for each row, the newest version with commit_ts <= T;
// a tombstone reads as absent. Versions below the GC safe point are dropped by
// VersionGcFilter, which always keeps the newest such version, so every read at a
// timestamp >= the safe point is unaffected by GC.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/mvcc/key_codec.h"
#include "core/storage_engine/engine.h"

namespace gojodb::mvcc {

inline constexpr storage::ColumnFamily kVersionCf = storage::ColumnFamily::kWrite;

struct VersionedValue {
  Timestamp version = 0;
  bool deleted = false;  // a tombstone
  std::string value;
  // The start timestamp of the transaction that wrote it; `version` for a write that
  // was not part of a multi-shard transaction.
  Timestamp start_ts = 0;
};

void PutVersion(storage::WriteBatch* batch, std::string_view row_key, Timestamp ts,
                std::string_view value);
void DeleteVersion(storage::WriteBatch* batch, std::string_view row_key, Timestamp ts);
// A transaction's commit of a row: the version at commit_ts, naming start_ts.
void PutCommitted(storage::WriteBatch* batch, std::string_view row_key, Timestamp commit_ts,
                  Timestamp start_ts, std::string_view value);
void DeleteCommitted(storage::WriteBatch* batch, std::string_view row_key, Timestamp commit_ts,
                     Timestamp start_ts);
// Decodes a version record stored at `ts` (DATA_LOSS when malformed).
Result<VersionedValue> DecodeVersion(Timestamp ts, std::string_view record);

struct ScanOptions {
  uint32_t tenant = 0;
  uint32_t collection = 0;
  std::string start;  // user key, inclusive; empty: from the first
  std::string end;    // user key, exclusive; empty: to the last
  size_t limit = 1000;
  bool reverse = false;
  Timestamp read_ts = kMaxTimestamp;
};

struct ScanItem {
  std::string key;
  std::string value;
  Timestamp version = 0;
};

struct ScanOutput {
  std::vector<ScanItem> items;
  // When more rows remain: forward, the first key not returned (the next start);
  // reverse, the last key returned (the next exclusive end).
  std::optional<std::string> next;
};

// Reads rows at a timestamp. Cheap to construct; not thread-safe.
class MvccReader {
 public:
  // `snapshot` may be null (the engine's latest state).
  MvccReader(storage::Engine* engine, const storage::Snapshot* snapshot)
      : engine_(engine), snapshot_(snapshot) {}

  // The newest version (a tombstone included) with commit_ts <= read_ts, or nullopt.
  Result<std::optional<VersionedValue>> Get(std::string_view row_key, Timestamp read_ts);

  // Get of each of `row_keys` (in any order) at read_ts through one iterator: visits
  // them in order until `visit` answers false or an error, which it returns.
  using GetVisitor = std::function<Result<bool>(size_t i, std::optional<VersionedValue> value)>;
  Status GetEach(const std::vector<std::string>& row_keys, Timestamp read_ts,
                 const GetVisitor& visit);
  // The same over `count` rows that `row_at` names (views valid for the call).
  Status GetEach(size_t count, const std::function<std::string_view(size_t)>& row_at,
                 Timestamp read_ts, const GetVisitor& visit);

  // The commit timestamp of transaction `start_ts` on the row: the version above
  // start_ts that names it, or nullopt. Reads only the versions above start_ts.
  Result<std::optional<Timestamp>> FindCommit(std::string_view row_key, Timestamp start_ts);

  // Live rows in [start, end) at read_ts, at most `limit`, in key order (or reverse).
  Result<ScanOutput> Scan(const ScanOptions& options);

 private:
  storage::Engine* engine_;
  const storage::Snapshot* snapshot_;
};

// The GC safe point shared between whoever advances it and the compaction filter.
struct SafePoint {
  std::atomic<Timestamp> ts{0};
};

// Compaction filter for the version column family: drops every version of a row older
// than the newest version at or below the safe point.
std::shared_ptr<storage::KeyFilterFactory> NewVersionGcFilterFactory(
    std::shared_ptr<const SafePoint> safe_point);

}  // namespace gojodb::mvcc
