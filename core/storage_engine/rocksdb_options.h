// RocksDB tuning, in one place. Only code that opens RocksDB itself includes this: the
// engine adapter and the benchmark's raw-RocksDB mode, which must run with exactly the
// server's settings to be a fair upper bound.
#pragma once

#include <rocksdb/options.h>

#include <memory>

namespace gojodb::storage {

// Database-wide options (background jobs, WAL and file limits). Does not set
// create_if_missing.
rocksdb::DBOptions RocksDbDbOptions();

// A block-based table factory with bloom filters over one LRU block cache; share one
// factory between column families so they share the cache.
std::shared_ptr<rocksdb::TableFactory> RocksDbTableFactory(size_t block_cache_bytes);

// Per-column-family options: memtable size, LZ4 with ZSTD at the bottom, dynamic levels.
rocksdb::ColumnFamilyOptions RocksDbColumnFamilyOptions(
    size_t write_buffer_bytes, std::shared_ptr<rocksdb::TableFactory> table);

}  // namespace gojodb::storage
