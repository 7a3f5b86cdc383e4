#include "core/storage_engine/engine.h"

#include "core/storage_engine/memory_engine.h"
#include "core/storage_engine/rocksdb_engine.h"

namespace gojodb::storage {

std::string_view ColumnFamilyName(ColumnFamily cf) {
  switch (cf) {
    case ColumnFamily::kDefault:
      return "default";
    case ColumnFamily::kData:
      return "data";
    case ColumnFamily::kLock:
      return "lock";
    case ColumnFamily::kWrite:
      return "write";
    case ColumnFamily::kRaft:
      return "raft";
    case ColumnFamily::kMeta:
      return "meta";
  }
  return "unknown";
}

void WriteBatch::Put(ColumnFamily cf, std::string_view key, std::string_view value) {
  ops_.push_back({OpType::kPut, cf, std::string(key), std::string(value)});
  bytes_ += key.size() + value.size();
}

void WriteBatch::PutOwned(ColumnFamily cf, std::string&& key, std::string&& value) {
  bytes_ += key.size() + value.size();
  ops_.push_back({OpType::kPut, cf, std::move(key), std::move(value)});
}

void WriteBatch::Delete(ColumnFamily cf, std::string_view key) {
  ops_.push_back({OpType::kDelete, cf, std::string(key), {}});
  bytes_ += key.size();
}

void WriteBatch::DeleteRange(ColumnFamily cf, std::string_view begin, std::string_view end) {
  ops_.push_back({OpType::kDeleteRange, cf, std::string(begin), std::string(end)});
  bytes_ += begin.size() + end.size();
}

Result<std::unique_ptr<Engine>> OpenEngine(const EngineOptions& options) {
  if (options.kind == "rocksdb") return OpenRocksDbEngine(options);
  if (options.kind == "memory") return std::unique_ptr<Engine>(NewMemoryEngine(options));
  return Status::InvalidArgument("unknown storage engine '" + options.kind +
                                 "' (expected rocksdb or memory)");
}

}  // namespace gojodb::storage
