#include "tools/bench/postgres_target.h"

#include <libpq-fe.h>

#include <algorithm>
#include <cstring>

#include "tools/bench/workload.h"

namespace gojodb::bench {
namespace {

// SQLSTATEs that mean "retry the transaction": serialization failure, deadlock.
bool Retryable(const PGresult* r) {
  const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
  return state != nullptr && (std::strcmp(state, "40001") == 0 || std::strcmp(state, "40P01") == 0);
}

class PgConnection final : public Connection {
 public:
  explicit PgConnection(const std::string& conninfo) : c_(PQconnectdb(conninfo.c_str())) {
    if (PQstatus(c_) != CONNECTION_OK) return;
    ok_ = Prepare("read", "SELECT v FROM bench WHERE k = $1", 1) &&
          Prepare("update", "UPDATE bench SET v = $2 WHERE k = $1", 2) &&
          Prepare("insert",
                  "INSERT INTO bench (k, balance, v) VALUES ($1, 0, $2) "
                  "ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v",
                  2) &&
          Prepare("scan", "SELECT k, v FROM bench WHERE k >= $1 ORDER BY k LIMIT $2::bigint", 2) &&
          Prepare("lock", "SELECT v FROM bench WHERE k = $1 FOR UPDATE", 1) &&
          Prepare("add", "UPDATE bench SET balance = balance + $2::bigint WHERE k = $1", 2);
  }
  ~PgConnection() override { PQfinish(c_); }

  OpResult Read(const std::string& key) override {
    return Rows(Exec("read", {key}), "read " + key, /*need_row=*/true);
  }
  OpResult Update(const std::string& key, const std::string& value) override {
    return Command(Exec("update", {key, value}), "update " + key);
  }
  OpResult Insert(const std::string& key, const std::string& value) override {
    return Command(Exec("insert", {key, value}), "insert " + key);
  }
  OpResult Scan(const std::string& start, uint64_t count) override {
    return Rows(Exec("scan", {start, std::to_string(count)}), "scan " + start, false);
  }
  OpResult ReadModifyWrite(const std::string& key, const std::string& value) override {
    return InTransaction([&]() -> OpResult {
      OpResult r = Rows(Exec("lock", {key}), "lock " + key, true);
      if (r.outcome != Outcome::kOk) return r;
      return Command(Exec("update", {key, value}), "update " + key);
    });
  }
  OpResult Transfer(const std::string& from, const std::string& to, int64_t amount,
                    const std::string&) override {
    // In key order, so that two transfers over the same rows never wait on each other
    // in a cycle.
    const bool from_first = from < to;
    return InTransaction([&]() -> OpResult {
      for (int i = 0; i < 2; ++i) {
        const bool debit = (i == 0) == from_first;
        const std::string& key = debit ? from : to;
        OpResult r = Command(Exec("add", {key, std::to_string(debit ? -amount : amount)}),
                             "transfer " + key);
        if (r.outcome != Outcome::kOk) return r;
      }
      return OpResult::Ok();
    });
  }

  bool ok() const { return ok_; }
  std::string error() const { return PQerrorMessage(c_); }

 private:
  struct Result {
    PGresult* r = nullptr;
    ~Result() { PQclear(r); }
  };

  bool Prepare(const char* name, const char* sql, int params) {
    Result res{PQprepare(c_, name, sql, params, nullptr)};
    return PQresultStatus(res.r) == PGRES_COMMAND_OK;
  }
  // Runs a prepared statement; parameter 1 (v) is binary, the others text.
  std::unique_ptr<Result> Exec(const char* name, std::initializer_list<std::string> params) {
    const char* values[4];
    int lengths[4];
    int formats[4];
    int n = 0;
    for (const auto& p : params) {
      values[n] = p.data();
      lengths[n] = static_cast<int>(p.size());
      formats[n] =
          (n == 1 && (std::strcmp(name, "update") == 0 || std::strcmp(name, "insert") == 0)) ? 1
                                                                                             : 0;
      ++n;
    }
    auto out = std::make_unique<Result>();
    out->r = PQexecPrepared(c_, name, n, values, lengths, formats, /*resultFormat=*/1);
    return out;
  }
  OpResult Command(const std::unique_ptr<Result>& res, const std::string& what) {
    if (PQresultStatus(res->r) == PGRES_COMMAND_OK) return OpResult::Ok();
    if (Retryable(res->r)) return OpResult::Conflict();
    return OpResult::Error(what + ": " + PQresultErrorMessage(res->r));
  }
  OpResult Rows(const std::unique_ptr<Result>& res, const std::string& what, bool need_row) {
    if (PQresultStatus(res->r) != PGRES_TUPLES_OK) {
      if (Retryable(res->r)) return OpResult::Conflict();
      return OpResult::Error(what + ": " + PQresultErrorMessage(res->r));
    }
    if (need_row && PQntuples(res->r) == 0) return OpResult::NotFound();
    return OpResult::Ok();
  }
  template <typename F>
  OpResult InTransaction(F&& body) {
    Result begin{PQexec(c_, "BEGIN")};
    if (PQresultStatus(begin.r) != PGRES_COMMAND_OK) {
      return OpResult::Error(std::string("begin: ") + PQresultErrorMessage(begin.r));
    }
    OpResult r = body();
    if (r.outcome != Outcome::kOk) {
      Result rollback{PQexec(c_, "ROLLBACK")};
      return r;
    }
    Result commit{PQexec(c_, "COMMIT")};
    if (PQresultStatus(commit.r) == PGRES_COMMAND_OK) return OpResult::Ok();
    if (Retryable(commit.r)) return OpResult::Conflict();
    return OpResult::Error(std::string("commit: ") + PQresultErrorMessage(commit.r));
  }

  PGconn* c_;
  bool ok_ = false;
};

// A connection that could not be set up: every operation fails with why.
class FailedConnection final : public Connection {
 public:
  explicit FailedConnection(std::string why) : why_(std::move(why)) {}
  OpResult Read(const std::string&) override { return OpResult::Error(why_); }
  OpResult Update(const std::string&, const std::string&) override { return OpResult::Error(why_); }
  OpResult Insert(const std::string&, const std::string&) override { return OpResult::Error(why_); }
  OpResult Scan(const std::string&, uint64_t) override { return OpResult::Error(why_); }
  OpResult ReadModifyWrite(const std::string&, const std::string&) override {
    return OpResult::Error(why_);
  }
  OpResult Transfer(const std::string&, const std::string&, int64_t, const std::string&) override {
    return OpResult::Error(why_);
  }

 private:
  std::string why_;
};

}  // namespace

std::string PostgresTarget::Describe() const { return "postgres (" + options_.conninfo + ")"; }

Status PostgresTarget::Open() {
  PGconn* c = PQconnectdb(options_.conninfo.c_str());
  if (PQstatus(c) != CONNECTION_OK) {
    Status s = Status::Unavailable(std::string("postgres: ") + PQerrorMessage(c));
    PQfinish(c);
    return s;
  }
  PGresult* r = PQexec(c,
                       "CREATE TABLE IF NOT EXISTS bench (k text PRIMARY KEY, "
                       "balance bigint NOT NULL DEFAULT 0, v bytea)");
  Status s = PQresultStatus(r) == PGRES_COMMAND_OK
                 ? Status::OK()
                 : Status::Internal(std::string("postgres: ") + PQresultErrorMessage(r));
  PQclear(r);
  PQfinish(c);
  return s;
}

std::unique_ptr<Connection> PostgresTarget::Connect(int) {
  auto c = std::make_unique<PgConnection>(options_.conninfo);
  if (!c->ok()) return std::make_unique<FailedConnection>("postgres: " + c->error());
  return c;
}

}  // namespace gojodb::bench
