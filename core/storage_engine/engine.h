// core/storage_engine: the one interface GojoDB uses to store bytes.
//
// An Engine is an ordered key-value store with a fixed set of column families, atomic
// write batches (optionally fsynced), consistent snapshots and bounded iterators. Two
// adapters implement it: RocksDB (the default) and an in-memory engine for tests and
// ephemeral use; both pass the same conformance suite (engine_conformance_test.cc).
// Nothing above this header sees RocksDB.
//
// Thread safety: every Engine method may be called concurrently. An Iterator is used by
// one thread at a time and must not outlive its Engine.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "internal/status.h"

namespace gojodb::storage {

// The column families every engine has. Percolator's three (data, lock, write), the
// Raft log, and node-local metadata.
enum class ColumnFamily : uint8_t { kDefault = 0, kData, kLock, kWrite, kRaft, kMeta };
inline constexpr int kNumColumnFamilies = 6;
std::string_view ColumnFamilyName(ColumnFamily cf);

// An engine-neutral atomic batch of mutations.
class WriteBatch {
 public:
  enum class OpType : uint8_t { kPut, kDelete, kDeleteRange };
  struct Op {
    OpType type;
    ColumnFamily cf;
    std::string key;    // begin key for kDeleteRange
    std::string value;  // end key for kDeleteRange
  };

  void Put(ColumnFamily cf, std::string_view key, std::string_view value);
  // Takes the strings over (no copy): for keys and values built just for the batch.
  void PutOwned(ColumnFamily cf, std::string&& key, std::string&& value);
  void Delete(ColumnFamily cf, std::string_view key);
  // Deletes every key in [begin, end).
  void DeleteRange(ColumnFamily cf, std::string_view begin, std::string_view end);
  void Clear() {
    ops_.clear();
    bytes_ = 0;
  }
  // Moves every mutation of `other` to the end of this batch.
  void Append(WriteBatch&& other) {
    ops_.insert(ops_.end(), std::make_move_iterator(other.ops_.begin()),
                std::make_move_iterator(other.ops_.end()));
    bytes_ += other.bytes_;
    other.Clear();
  }

  const std::vector<Op>& ops() const { return ops_; }
  size_t Count() const { return ops_.size(); }
  size_t ByteSize() const { return bytes_; }

 private:
  std::vector<Op> ops_;
  size_t bytes_ = 0;
};

struct WriteOptions {
  // true: returns only after the write is on stable storage (WAL fsynced). Concurrent
  // synced writers share one fsync (group commit).
  bool sync = true;
};

// An opaque, immutable point-in-time view. Release by dropping the shared_ptr.
class Snapshot {
 public:
  virtual ~Snapshot() = default;
};

struct ReadOptions {
  const Snapshot* snapshot = nullptr;  // null: the latest state
  // Iterator bounds; empty means unbounded. lower is inclusive, upper exclusive.
  std::string lower_bound;
  std::string upper_bound;
  // For point lookups in a column family with a key prefix (EngineOptions::
  // key_suffix_bytes): each Seek lands only on keys of the seek key's prefix, and the
  // iterator ends where they end, so RocksDB skips memtables and files whose prefix
  // filter rules the prefix out. An engine without prefixes iterates in total order
  // (more keys, never fewer): callers check that a key has their prefix.
  bool prefix_seek = false;
  // Iterators: a seek or step that would pass over more than this many deleted or
  // overwritten entries stops there, not Valid, with a non-OK status() (0: no limit).
  // For callers that only ask whether a range holds anything and have another way to
  // learn it. An engine that keeps no such entries never stops.
  uint64_t max_skipped_entries = 0;
};

class Iterator {
 public:
  virtual ~Iterator() = default;
  virtual bool Valid() const = 0;
  virtual void SeekToFirst() = 0;
  virtual void SeekToLast() = 0;
  // First key >= target.
  virtual void Seek(std::string_view target) = 0;
  // Last key <= target.
  virtual void SeekForPrev(std::string_view target) = 0;
  virtual void Next() = 0;
  virtual void Prev() = 0;
  // REQUIRES: Valid(). Views stay valid until the iterator moves.
  virtual std::string_view key() const = 0;
  virtual std::string_view value() const = 0;
  // Non-OK if the iteration stopped on an error rather than at the end.
  virtual Status status() const = 0;
};

// Decides, during compaction, which keys of one column family to drop. One KeyFilter
// sees the keys of one compaction run in ascending order, so it may keep state across
// calls (for example "a newer version of this row was already kept").
class KeyFilter {
 public:
  virtual ~KeyFilter() = default;
  // Returns false to drop the key.
  virtual bool Keep(std::string_view key, std::string_view value) = 0;
};
class KeyFilterFactory {
 public:
  virtual ~KeyFilterFactory() = default;
  virtual std::unique_ptr<KeyFilter> NewFilter() = 0;
};

struct EngineOptions {
  std::string kind = "rocksdb";  // "rocksdb" or "memory"
  std::string path;              // data directory (rocksdb)
  // Compaction filters by column family.
  std::map<ColumnFamily, std::shared_ptr<KeyFilterFactory>> filters;
  size_t block_cache_bytes = 256ull << 20;
  size_t write_buffer_bytes = 64ull << 20;
  // Column families whose keys end with a fixed-length suffix: the key without it is
  // their prefix, which RocksDB keeps bloom filters of (in memtables and files) for
  // ReadOptions::prefix_seek. kWrite holds MVCC versions, row key + ~commit_ts:u64be, so
  // its prefix is the row (docs/architecture/storage-engine.md).
  std::map<ColumnFamily, size_t> key_suffix_bytes = {{ColumnFamily::kWrite, 8}};
};

class Engine {
 public:
  virtual ~Engine() = default;

  virtual Status Write(const WriteOptions& options, const WriteBatch& batch) = 0;
  // nullopt when the key is absent.
  virtual Result<std::optional<std::string>> Get(const ReadOptions& options, ColumnFamily cf,
                                                 std::string_view key) = 0;
  virtual std::unique_ptr<Iterator> NewIterator(const ReadOptions& options, ColumnFamily cf) = 0;
  virtual std::shared_ptr<const Snapshot> GetSnapshot() = 0;

  // Makes earlier unsynced writes durable.
  virtual Status SyncWal() = 0;
  // Compacts [begin, end) (empty: unbounded), running the column family's KeyFilter.
  // Once `cancel` (if given) is set, before or during the compaction, it stops soon
  // after and answers CANCELLED: what it wrote stays, the rest is left for later ones.
  virtual Status CompactRange(ColumnFamily cf, std::string_view begin, std::string_view end,
                              const std::atomic<bool>* cancel) = 0;
  Status CompactRange(ColumnFamily cf, std::string_view begin, std::string_view end) {
    return CompactRange(cf, begin, end, nullptr);
  }
  // Drops the files whose keys all lie in [begin, end), unread: for a range whose keys a
  // range deletion already removed, space back without compacting what it held. Files
  // that also hold keys outside, and unflushed data, stay (CompactRange takes them). An
  // engine without files does nothing.
  virtual Status DeleteFilesInRange(ColumnFamily, std::string_view, std::string_view) {
    return Status::OK();
  }
  // An estimate of the bytes that keys in [begin, end) take, memtables included (empty
  // end: unbounded). Cheap: no data is read.
  virtual Result<uint64_t> ApproximateSize(ColumnFamily cf, std::string_view begin,
                                           std::string_view end) = 0;
  // Numeric statistics for /metrics, by name (e.g. "l0_files", "live_sst_bytes").
  virtual std::map<std::string, uint64_t> Stats() = 0;
  virtual std::string_view Kind() const = 0;
};

// Opens (creating if missing) the engine that options.kind names.
Result<std::unique_ptr<Engine>> OpenEngine(const EngineOptions& options);

}  // namespace gojodb::storage
