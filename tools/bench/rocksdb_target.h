// tools/bench: the same workload on RocksDB opened in-process, without a server: the
// upper bound the server is measured against. Opened with the options of the server's
// storage engine (core/storage_engine/rocksdb_engine.cc): LRU block cache, bloom
// filters, LZ4 (ZSTD at the bottom level); one DB::Put per write.
#pragma once

#include <memory>
#include <string>

#include "tools/bench/target.h"

namespace rocksdb {
class DB;
}

namespace gojodb::bench {

struct RocksDbTargetOptions {
  std::string path;
  bool sync = true;  // WriteOptions.sync on every write
  size_t block_cache_bytes = 256ull << 20;
  size_t write_buffer_bytes = 64ull << 20;
};

class RocksDbTarget final : public Target {
 public:
  explicit RocksDbTarget(RocksDbTargetOptions options);
  ~RocksDbTarget() override;

  std::string Describe() const override;
  Status Open() override;
  std::unique_ptr<Connection> Connect(int thread) override;

 private:
  RocksDbTargetOptions options_;
  std::unique_ptr<rocksdb::DB> db_;
};

}  // namespace gojodb::bench
