#include "tools/bench/rocksdb_target.h"

#include <rocksdb/db.h>
#include <rocksdb/options.h>

#include "core/storage_engine/rocksdb_options.h"

namespace gojodb::bench {
namespace {

class RocksDbConnection final : public Connection {
 public:
  RocksDbConnection(rocksdb::DB* db, bool sync) : db_(db) { write_options_.sync = sync; }

  OpResult Read(const std::string& key) override {
    rocksdb::PinnableSlice value;
    auto s = db_->Get(read_options_, db_->DefaultColumnFamily(), key, &value);
    if (s.IsNotFound()) return OpResult::NotFound();
    if (!s.ok()) return OpResult::Error("get " + key + ": " + s.ToString());
    return OpResult::Ok();
  }

  OpResult Update(const std::string& key, const std::string& value) override {
    return Write("put", key, value);
  }

  OpResult Insert(const std::string& key, const std::string& value) override {
    return Write("insert", key, value);
  }

  OpResult Scan(const std::string& start, uint64_t count) override {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read_options_));
    uint64_t bytes = 0;
    uint64_t n = 0;
    for (it->Seek(start); it->Valid() && n < count; it->Next(), ++n) {
      bytes += it->key().size() + it->value().size();  // touch every row, as a server would
    }
    if (!it->status().ok())
      return OpResult::Error("scan from " + start + ": " + it->status().ToString());
    sink_ += bytes;
    return OpResult::Ok();
  }

  // Get then Put. Nothing else writes a key between the two unless another thread
  // picks the same key; RocksDB has no conditional put, so there are no conflicts here.
  OpResult ReadModifyWrite(const std::string& key, const std::string& value) override {
    OpResult r = Read(key);
    if (r.outcome != Outcome::kOk) return r;
    return Write("put", key, value);
  }

 private:
  OpResult Write(const char* what, const std::string& key, const std::string& value) {
    auto s = db_->Put(write_options_, key, value);
    if (!s.ok()) return OpResult::Error(std::string(what) + " " + key + ": " + s.ToString());
    return OpResult::Ok();
  }

  rocksdb::DB* db_;
  rocksdb::ReadOptions read_options_;
  rocksdb::WriteOptions write_options_;
  uint64_t sink_ = 0;
};

}  // namespace

RocksDbTarget::RocksDbTarget(RocksDbTargetOptions options) : options_(std::move(options)) {}

RocksDbTarget::~RocksDbTarget() {
  if (db_) {
    db_->SyncWAL();
    db_->Close();
  }
}

std::string RocksDbTarget::Describe() const {
  return "rocksdb " + options_.path + " (in-process, sync=" + (options_.sync ? "true" : "false") +
         ")";
}

Status RocksDbTarget::Open() {
  // The server's own RocksDB settings, so this is a fair upper bound.
  rocksdb::Options o(
      storage::RocksDbDbOptions(),
      storage::RocksDbColumnFamilyOptions(
          options_.write_buffer_bytes, storage::RocksDbTableFactory(options_.block_cache_bytes)));
  o.create_if_missing = true;

  rocksdb::DB* db = nullptr;
  auto s = rocksdb::DB::Open(o, options_.path, &db);
  if (!s.ok()) return Status::Internal("open rocksdb at " + options_.path + ": " + s.ToString());
  db_.reset(db);
  return Status::OK();
}

std::unique_ptr<Connection> RocksDbTarget::Connect(int thread) {
  return std::make_unique<RocksDbConnection>(db_.get(), options_.sync);
}

}  // namespace gojodb::bench
