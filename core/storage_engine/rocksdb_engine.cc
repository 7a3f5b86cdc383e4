#include "core/storage_engine/rocksdb_engine.h"

#include <rocksdb/compaction_filter.h>
#include <rocksdb/convenience.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/write_batch.h>

#include <array>

#include "core/storage_engine/rocksdb_options.h"

namespace gojodb::storage {
namespace {

Status FromRocks(const rocksdb::Status& s) {
  if (s.ok()) return Status::OK();
  if (s.IsNotFound()) return Status::NotFound(s.ToString());
  if (s.IsCorruption()) return Status::Corruption(s.ToString());
  if (s.IsNoSpace()) return Status::ResourceExhausted("disk full: " + s.ToString());
  if (s.IsIOError()) return Status::IOError(s.ToString());
  if (s.IsInvalidArgument()) return Status::InvalidArgument(s.ToString());
  if (s.IsBusy() || s.IsTryAgain()) return Status::Unavailable(s.ToString());
  return Status::Internal(s.ToString());
}

rocksdb::Slice ToSlice(std::string_view s) { return {s.data(), s.size()}; }
std::string_view ToView(const rocksdb::Slice& s) { return {s.data(), s.size()}; }

// Adapts a KeyFilter to RocksDB's compaction filter API.
class FilterAdapter final : public rocksdb::CompactionFilter {
 public:
  explicit FilterAdapter(std::unique_ptr<KeyFilter> f) : f_(std::move(f)) {}
  bool Filter(int, const rocksdb::Slice& key, const rocksdb::Slice& value, std::string*,
              bool*) const override {
    return !f_->Keep(ToView(key), ToView(value));
  }
  const char* Name() const override { return "gojodb.KeyFilter"; }

 private:
  std::unique_ptr<KeyFilter> f_;  // Filter() is const in RocksDB's API; the state is ours.
};

class FilterFactoryAdapter final : public rocksdb::CompactionFilterFactory {
 public:
  explicit FilterFactoryAdapter(std::shared_ptr<KeyFilterFactory> f) : f_(std::move(f)) {}
  std::unique_ptr<rocksdb::CompactionFilter> CreateCompactionFilter(
      const rocksdb::CompactionFilter::Context&) override {
    return std::make_unique<FilterAdapter>(f_->NewFilter());
  }
  const char* Name() const override { return "gojodb.KeyFilterFactory"; }

 private:
  std::shared_ptr<KeyFilterFactory> f_;
};

class RocksSnapshot final : public Snapshot {
 public:
  RocksSnapshot(rocksdb::DB* db) : db_(db), snap_(db->GetSnapshot()) {}
  ~RocksSnapshot() override { db_->ReleaseSnapshot(snap_); }
  const rocksdb::Snapshot* get() const { return snap_; }

 private:
  rocksdb::DB* db_;
  const rocksdb::Snapshot* snap_;
};

// The prefix of a key that ends with `n` bytes of suffix: the rest. Keys of n bytes or
// fewer have none (outside the domain: never filtered by prefix).
class StripSuffix final : public rocksdb::SliceTransform {
 public:
  explicit StripSuffix(size_t n) : n_(n), name_("gojodb.StripSuffix." + std::to_string(n)) {}
  const char* Name() const override { return name_.c_str(); }
  rocksdb::Slice Transform(const rocksdb::Slice& key) const override {
    return rocksdb::Slice(key.data(), key.size() - n_);
  }
  bool InDomain(const rocksdb::Slice& key) const override { return key.size() > n_; }

 private:
  const size_t n_;
  const std::string name_;
};

class RocksIterator final : public Iterator {
 public:
  RocksIterator(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf, const ReadOptions& options)
      : lower_(options.lower_bound), upper_(options.upper_bound) {
    rocksdb::ReadOptions ro;
    if (options.snapshot) ro.snapshot = static_cast<const RocksSnapshot*>(options.snapshot)->get();
    if (!lower_.empty()) {
      lower_slice_ = ToSlice(lower_);
      ro.iterate_lower_bound = &lower_slice_;
    }
    if (!upper_.empty()) {
      upper_slice_ = ToSlice(upper_);
      ro.iterate_upper_bound = &upper_slice_;
    }
    // Total order unless asked: with a prefix extractor, RocksDB's default would let a
    // Seek skip keys of other prefixes.
    ro.total_order_seek = !options.prefix_seek;
    ro.max_skippable_internal_keys = options.max_skipped_entries;
    ro.prefix_same_as_start = options.prefix_seek;
    it_.reset(db->NewIterator(ro, cf));
  }
  bool Valid() const override { return it_->Valid(); }
  void SeekToFirst() override { it_->SeekToFirst(); }
  void SeekToLast() override { it_->SeekToLast(); }
  void Seek(std::string_view t) override { it_->Seek(ToSlice(t)); }
  void SeekForPrev(std::string_view t) override { it_->SeekForPrev(ToSlice(t)); }
  void Next() override { it_->Next(); }
  void Prev() override { it_->Prev(); }
  std::string_view key() const override { return ToView(it_->key()); }
  std::string_view value() const override { return ToView(it_->value()); }
  Status status() const override { return FromRocks(it_->status()); }

 private:
  std::string lower_, upper_;
  rocksdb::Slice lower_slice_, upper_slice_;
  std::unique_ptr<rocksdb::Iterator> it_;
};

class RocksDbEngine final : public Engine {
 public:
  ~RocksDbEngine() override {
    for (auto* h : handles_) {
      if (h) db_->DestroyColumnFamilyHandle(h);
    }
    if (db_) {
      db_->SyncWAL();
      db_->Close();
    }
  }

  Status Open(const EngineOptions& options) {
    rocksdb::DBOptions db_opts = RocksDbDbOptions();
    db_opts.create_if_missing = true;
    db_opts.create_missing_column_families = true;
    auto table = RocksDbTableFactory(options.block_cache_bytes);

    std::vector<rocksdb::ColumnFamilyDescriptor> descs;
    for (int i = 0; i < kNumColumnFamilies; ++i) {
      auto cf = static_cast<ColumnFamily>(i);
      rocksdb::ColumnFamilyOptions cf_opts =
          RocksDbColumnFamilyOptions(options.write_buffer_bytes, table);
      if (cf == ColumnFamily::kRaft) {
        // Raft log entries live until their shard's log is truncated, seconds later:
        // compressing them at each flush and compaction spent CPU on bytes soon deleted.
        cf_opts.compression = rocksdb::kNoCompression;
        cf_opts.bottommost_compression = rocksdb::kNoCompression;
      }
      if (auto k = options.key_suffix_bytes.find(cf); k != options.key_suffix_bytes.end()) {
        cf_opts.prefix_extractor = std::make_shared<StripSuffix>(k->second);
        cf_opts.memtable_prefix_bloom_size_ratio = 0.05;
      }
      auto f = options.filters.find(cf);
      if (f != options.filters.end() && f->second) {
        cf_opts.compaction_filter_factory = std::make_shared<FilterFactoryAdapter>(f->second);
      }
      std::string name(i == 0 ? rocksdb::kDefaultColumnFamilyName : ColumnFamilyName(cf));
      descs.emplace_back(name, cf_opts);
    }
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* db = nullptr;
    auto s = rocksdb::DB::Open(db_opts, options.path, descs, &handles, &db);
    if (!s.ok()) return FromRocks(s).WithContext("open " + options.path);
    db_.reset(db);
    for (int i = 0; i < kNumColumnFamilies; ++i) handles_[i] = handles[i];
    return Status::OK();
  }

  Status Write(const WriteOptions& options, const WriteBatch& batch) override {
    // Its final size up front (a header, then per op a tag, a family and two lengths):
    // a bulk write's batch of several MiB is not copied as it grows.
    rocksdb::WriteBatch wb(12 + batch.ByteSize() + 16 * batch.Count());
    for (const auto& op : batch.ops()) {
      auto* h = handle(op.cf);
      rocksdb::Status s;
      switch (op.type) {
        case WriteBatch::OpType::kPut:
          s = wb.Put(h, op.key, op.value);
          break;
        case WriteBatch::OpType::kDelete:
          s = wb.Delete(h, op.key);
          break;
        case WriteBatch::OpType::kDeleteRange:
          if (op.key < op.value) s = wb.DeleteRange(h, op.key, op.value);
          break;
      }
      if (!s.ok()) return FromRocks(s);
    }
    rocksdb::WriteOptions wo;
    wo.sync = options.sync;
    return FromRocks(db_->Write(wo, &wb));
  }

  Result<std::optional<std::string>> Get(const ReadOptions& options, ColumnFamily cf,
                                         std::string_view key) override {
    rocksdb::ReadOptions ro;
    if (options.snapshot) ro.snapshot = static_cast<const RocksSnapshot*>(options.snapshot)->get();
    std::string value;
    auto s = db_->Get(ro, handle(cf), ToSlice(key), &value);
    if (s.IsNotFound()) return std::optional<std::string>();
    if (!s.ok()) return FromRocks(s);
    return std::optional<std::string>(std::move(value));
  }

  std::unique_ptr<Iterator> NewIterator(const ReadOptions& options, ColumnFamily cf) override {
    return std::make_unique<RocksIterator>(db_.get(), handle(cf), options);
  }

  std::shared_ptr<const Snapshot> GetSnapshot() override {
    return std::make_shared<RocksSnapshot>(db_.get());
  }

  Status SyncWal() override { return FromRocks(db_->SyncWAL()); }

  Status CompactRange(ColumnFamily cf, std::string_view begin, std::string_view end,
                      const std::atomic<bool>* cancel) override {
    rocksdb::Slice b = ToSlice(begin), e = ToSlice(end);
    rocksdb::CompactRangeOptions o;
    o.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
    // RocksDB only reads the flag; its API takes it non-const.
    o.canceled = const_cast<std::atomic<bool>*>(cancel);
    rocksdb::Status s =
        db_->CompactRange(o, handle(cf), begin.empty() ? nullptr : &b, end.empty() ? nullptr : &e);
    if (s.IsManualCompactionPaused() || (s.IsIncomplete() && cancel != nullptr && *cancel)) {
      return Status::Cancelled("compaction canceled: " + s.ToString());
    }
    return FromRocks(s);
  }

  Status DeleteFilesInRange(ColumnFamily cf, std::string_view begin,
                            std::string_view end) override {
    rocksdb::Slice b = ToSlice(begin), e = ToSlice(end);
    return FromRocks(rocksdb::DeleteFilesInRange(db_.get(), handle(cf), &b, &e,
                                                 /*include_end=*/false));
  }

  Result<uint64_t> ApproximateSize(ColumnFamily cf, std::string_view begin,
                                   std::string_view end) override {
    // An empty end is "unbounded": past every key, which starts with a byte below 0xff
    // in GojoDB's keyspace layouts; a long run of 0xff bounds the rest.
    const std::string hi = end.empty() ? std::string(64, '\xff') : std::string(end);
    rocksdb::Range r(ToSlice(begin), rocksdb::Slice(hi));
    uint64_t size = 0;
    rocksdb::SizeApproximationOptions o;
    o.include_memtables = true;
    o.include_files = true;
    Status s = FromRocks(db_->GetApproximateSizes(o, handle(cf), &r, 1, &size));
    if (!s.ok()) return s;
    return size;
  }

  std::map<std::string, uint64_t> Stats() override {
    static const std::array<std::pair<const char*, const char*>, 8> kProps = {{
        {"estimate_num_keys", "rocksdb.estimate-num-keys"},
        {"live_sst_bytes", "rocksdb.live-sst-files-size"},
        {"l0_files", "rocksdb.num-files-at-level0"},
        {"pending_compaction_bytes", "rocksdb.estimate-pending-compaction-bytes"},
        {"memtable_bytes", "rocksdb.cur-size-all-mem-tables"},
        {"running_compactions", "rocksdb.num-running-compactions"},
        {"running_flushes", "rocksdb.num-running-flushes"},
        {"block_cache_usage_bytes", "rocksdb.block-cache-usage"},
    }};
    std::map<std::string, uint64_t> out;
    for (const auto& [name, prop] : kProps) {
      uint64_t total = 0, v = 0;
      for (auto* h : handles_) {
        if (db_->GetIntProperty(h, prop, &v)) total += v;
      }
      if (std::string_view(name) == "block_cache_usage_bytes" ||
          std::string_view(name) == "running_compactions" ||
          std::string_view(name) == "running_flushes") {
        total = db_->GetIntProperty(handles_[0], prop, &v) ? v : 0;  // shared, count once
      }
      out[name] = total;
    }
    return out;
  }

  std::string_view Kind() const override { return "rocksdb"; }

 private:
  rocksdb::ColumnFamilyHandle* handle(ColumnFamily cf) { return handles_[static_cast<int>(cf)]; }

  std::unique_ptr<rocksdb::DB> db_;
  std::array<rocksdb::ColumnFamilyHandle*, kNumColumnFamilies> handles_{};
};

}  // namespace

Result<std::unique_ptr<Engine>> OpenRocksDbEngine(const EngineOptions& options) {
  if (options.path.empty()) return Status::InvalidArgument("rocksdb engine needs a path");
  auto engine = std::make_unique<RocksDbEngine>();
  RETURN_IF_ERROR(engine->Open(options));
  return std::unique_ptr<Engine>(std::move(engine));
}

}  // namespace gojodb::storage
