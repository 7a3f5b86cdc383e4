// tools/bench: PostgreSQL as a peer, over libpq (--target postgres --addr CONNINFO), for the
// transaction benchmark. One table, bench(k text primary key, balance bigint, v bytea):
// the YCSB operations read and write v; a transfer is BEGIN; UPDATE ... balance - 1;
// UPDATE ... balance + 1; COMMIT, the two rows updated in key order so that concurrent
// transfers never deadlock. Durability is the server's (synchronous_commit as set).
#pragma once

#include <memory>
#include <string>

#include "tools/bench/target.h"

namespace gojodb::bench {

struct PostgresTargetOptions {
  std::string conninfo;  // libpq connection string, e.g. "host=127.0.0.1 port=5432 dbname=b"
};

class PostgresTarget final : public Target {
 public:
  explicit PostgresTarget(PostgresTargetOptions options) : options_(std::move(options)) {}
  std::string Describe() const override;
  // Creates the table if it is missing.
  Status Open() override;
  std::unique_ptr<Connection> Connect(int thread) override;

 private:
  PostgresTargetOptions options_;
};

}  // namespace gojodb::bench
