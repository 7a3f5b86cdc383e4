#include "core/storage_engine/rocksdb_options.h"

#include <rocksdb/cache.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/table.h>

namespace gojodb::storage {

rocksdb::DBOptions RocksDbDbOptions() {
  rocksdb::DBOptions o;
  o.max_background_jobs = 2;
  o.bytes_per_sync = 1 << 20;
  o.max_open_files = 4096;
  o.keep_log_file_num = 4;
  o.max_total_wal_size = 256ull << 20;
  // (RocksDB's default, stated because correctness rests on it.) Recovery replays the
  // WAL up to its first damaged record, so what survives a crash is a prefix of what
  // was written: an unsynced write survives only with every write before it. Shards
  // rely on that for their applied index and their data-less snapshots (decision 24).
  o.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  return o;
}

std::shared_ptr<rocksdb::TableFactory> RocksDbTableFactory(size_t block_cache_bytes) {
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(block_cache_bytes);
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10, false));
  table.whole_key_filtering = true;
  return std::shared_ptr<rocksdb::TableFactory>(rocksdb::NewBlockBasedTableFactory(table));
}

rocksdb::ColumnFamilyOptions RocksDbColumnFamilyOptions(
    size_t write_buffer_bytes, std::shared_ptr<rocksdb::TableFactory> table) {
  rocksdb::ColumnFamilyOptions o;
  o.write_buffer_size = write_buffer_bytes;
  o.compression = rocksdb::kLZ4Compression;
  o.bottommost_compression = rocksdb::kZSTD;
  o.table_factory = std::move(table);
  o.level_compaction_dynamic_level_bytes = true;
  return o;
}

}  // namespace gojodb::storage
