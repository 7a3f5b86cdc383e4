// gojodb-docs-bench: JSON documents in GojoDB (over its HTTP API) against PostgreSQL
// JSONB (over libpq), on the same generated documents (docs/benchmarks.md, "Documents").
//
// Phases, each timed on its own, on every target given:
//   ingest  the documents as NDJSON in one stream: GojoDB's bulk endpoint in requests of
//           --batch lines, PostgreSQL's COPY ... FROM STDIN; once without secondary
//           indexes, then again into a fresh collection/table with its indexes declared
//           first (unique on email, non-unique on ts, age).
//   point   an indexed equality that finds one document (email = …), --threads clients
//           for --seconds.
//   range   an indexed range that finds about 20 documents (ts in [x, x+w)), in key order.
//   groupby count and average score per city over every document; --repeat times.
// With --rounds N every phase runs N times on each system, the systems taking turns
// (RunSystems), and the figures are the means of the rounds.
//
//   gojodb-docs-bench --gojodb 127.0.0.1:8080 --postgres "host=… dbname=…" --docs 200000
//
// Documents: {"_id":"d<i>","email":"u<i>@example.com","ts":<uniform in [0, 10·docs)>,
// "age":<0..99>,"city":"c<0..49>","score":<0..1000>,"name":"user <i>"}, from --seed.
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <simdjson.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tools/bench/histogram.h"

#ifdef GOJODB_BENCH_WITH_POSTGRES
#include <libpq-fe.h>
#endif

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

struct Options {
  std::string gojodb;    // host:port of the HTTP API
  std::string postgres;  // libpq conninfo
  uint64_t docs = 200000;
  int threads = 8;
  int seconds = 10;
  int batch = 10000;
  int repeat = 3;
  int rounds = 1;
  uint64_t seed = 1;
  std::string collection = "bench_docs";
  // GojoDB: after dropping the last round's collection, wait (up to this long) until the
  // server has deleted its rows and compacted them away, as PostgreSQL's DROP TABLE
  // frees its files at once. 0: do not wait (the dropped rows stay until the GC's TTL).
  int reclaim_wait_s = 0;
  // Skip both ingest phases: the queries run on the collection/table an earlier run
  // left (its indexed ingest, with the same --docs and --seed).
  bool queries_only = false;
};

struct Doc {
  std::string id, email, city, name;
  uint64_t ts = 0;
  int age = 0;
  double score = 0;
  std::string Json() const {
    char buf[512];
    std::snprintf(buf, sizeof(buf),
                  R"({"_id":"%s","email":"%s","ts":%llu,"age":%d,"city":"%s","score":%.3f,)"
                  R"("name":"%s"})",
                  id.c_str(), email.c_str(), static_cast<unsigned long long>(ts), age, city.c_str(),
                  score, name.c_str());
    return buf;
  }
};

std::vector<Doc> Generate(const Options& o) {
  std::mt19937_64 rng(o.seed);
  std::vector<Doc> out(o.docs);
  for (uint64_t i = 0; i < o.docs; ++i) {
    Doc& d = out[i];
    d.id = "d" + std::to_string(i);
    d.email = "u" + std::to_string(i) + "@example.com";
    d.ts = rng() % (10 * o.docs);
    d.age = static_cast<int>(rng() % 100);
    d.city = "c" + std::to_string(rng() % 50);
    d.score = static_cast<double>(rng() % 1000000) / 1000.0;
    d.name = "user " + std::to_string(i);
  }
  return out;
}

// What a system offers to the phases. Every call is from one thread of its own
// connection (Connect per client thread).
class Conn {
 public:
  virtual ~Conn() = default;
  virtual bool Point(const std::string& email) = 0;    // true: found exactly one
  virtual size_t Range(uint64_t lo, uint64_t hi) = 0;  // documents found; SIZE_MAX: error
  virtual bool GroupBy(size_t* groups) = 0;
};
class System {
 public:
  virtual ~System() = default;
  virtual std::string Name() const = 0;
  // An empty collection/table, with its indexes or none.
  virtual bool Setup(bool indexed) = 0;
  virtual bool Ingest(const std::vector<Doc>& docs, int batch) = 0;
  virtual std::unique_ptr<Conn> Connect() = 0;
};

// --- GojoDB over HTTP ----------------------------------------------------------------

// One keep-alive HTTP/1.1 connection, as lean as libpq is on the other side: a request
// (headers and body) goes out in one send, as curl sends a small POST, and an answer is
// read by blocking recv into one buffer. (cpp-httplib's client sent headers and body
// in two segments and polled before every read: 30% of the shared cores in the point
// phase, against libpq's few percent.) Answers carry a Content-Length, as GojoDB's do.
class HttpConn {
 public:
  struct Answer {
    int status = 0;
    std::string body;
  };
  HttpConn(std::string host, int port) : host_(std::move(host)), port_(port) {}
  ~HttpConn() { Close(); }
  HttpConn(const HttpConn&) = delete;
  HttpConn& operator=(const HttpConn&) = delete;

  // The answer, or nullopt with error() set. A kept-alive connection the server has
  // closed meanwhile is reopened once.
  std::optional<Answer> Request(std::string_view method, const std::string& path,
                                std::string_view body = {},
                                std::string_view type = "application/json") {
    std::string req;
    req.reserve(160 + path.size() + body.size());
    req.append(method).append(" ").append(path).append(" HTTP/1.1\r\nHost: ").append(host_);
    if (!body.empty() || method == "POST" || method == "PUT") {
      req.append("\r\nContent-Type: ").append(type);
      req.append("\r\nContent-Length: ").append(std::to_string(body.size()));
    }
    req.append("\r\n\r\n").append(body);
    for (int attempt = 0; attempt < 2; ++attempt) {
      const bool reused = fd_ >= 0;
      if (fd_ < 0 && !Connect()) return std::nullopt;
      got_bytes_ = !in_.empty();
      auto a = SendAll(req) ? ReadAnswer() : std::nullopt;
      if (a) return a;
      Close();
      if (!reused || got_bytes_) return std::nullopt;  // not a stale connection: fail
    }
    return std::nullopt;
  }
  const std::string& error() const { return error_; }

 private:
  bool Connect() {
    addrinfo hints{}, *res = nullptr;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (int rc = getaddrinfo(host_.c_str(), std::to_string(port_).c_str(), &hints, &res); rc != 0) {
      error_ = gai_strerror(rc);
      return false;
    }
    for (auto* ai = res; ai != nullptr && fd_ < 0; ai = ai->ai_next) {
      fd_ = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
      if (fd_ >= 0 && connect(fd_, ai->ai_addr, ai->ai_addrlen) != 0) Close();
    }
    freeaddrinfo(res);
    if (fd_ < 0) {
      error_ = "connect: " + std::string(std::strerror(errno));
      return false;
    }
    const int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    in_.clear();
    return true;
  }
  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }
  bool SendAll(std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        error_ = "send: " + std::string(std::strerror(errno));
        return false;
      }
      bytes.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }
  // Appends what recv gives to in_; false on EOF or an error.
  bool Fill() {
    char buf[65536];
    for (;;) {
      const ssize_t n = recv(fd_, buf, sizeof(buf), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        error_ = n == 0 ? "connection closed" : "recv: " + std::string(std::strerror(errno));
        return false;
      }
      got_bytes_ = true;
      in_.append(buf, static_cast<size_t>(n));
      return true;
    }
  }
  std::optional<Answer> ReadAnswer() {
    size_t end;
    while ((end = in_.find("\r\n\r\n")) == std::string::npos) {
      if (!Fill()) return std::nullopt;
    }
    const std::string_view head(in_.data(), end + 2);
    Answer a;
    size_t length = 0;
    bool close_after = false;
    if (head.size() < 12 || head.substr(0, 5) != "HTTP/") {
      error_ = "not an HTTP answer";
      return std::nullopt;
    }
    a.status = std::atoi(std::string(head.substr(9, 3)).c_str());
    for (size_t at = head.find("\r\n") + 2; at < head.size();) {
      const size_t eol = head.find("\r\n", at);
      const std::string_view line = head.substr(at, eol - at);
      at = eol + 2;
      const size_t colon = line.find(':');
      if (colon == std::string_view::npos) continue;
      std::string name(line.substr(0, colon));
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      std::string_view value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
      if (name == "content-length") length = std::strtoull(std::string(value).c_str(), nullptr, 10);
      if (name == "connection" && value == "close") close_after = true;
    }
    const size_t body_at = end + 4;
    while (in_.size() < body_at + length) {
      if (!Fill()) return std::nullopt;
    }
    a.body.assign(in_, body_at, length);
    in_.erase(0, body_at + length);
    if (close_after) Close();
    return a;
  }

  std::string host_;
  int port_;
  int fd_ = -1;
  std::string in_;  // bytes received and not yet part of an answer
  bool got_bytes_ = false;
  std::string error_;
};

class GojoConn final : public Conn {
 public:
  GojoConn(const std::string& host, int port, std::string coll)
      : c_(host, port), coll_(std::move(coll)) {}
  bool Point(const std::string& email) override {
    const size_t n = Query(json{{"filter", {{"email", email}}}, {"limit", 10}});
    if (n != SIZE_MAX && n != 1) {
      std::fprintf(stderr, "gojodb: %s found %zu documents\n", email.c_str(), n);
    }
    return n == 1;
  }
  size_t Range(uint64_t lo, uint64_t hi) override {
    return Query(json{{"filter", {{"ts", {{"gte", lo}, {"lt", hi}}}}}, {"limit", 1000}});
  }
  bool GroupBy(size_t* groups) override {
    auto r =
        c_.Request("POST", "/v1/collections/" + coll_ + "/aggregate",
                   R"({"group_by":["city"],"aggregates":{"n":{"count":"*"},"s":{"avg":"score"}}})");
    if (!r || r->status != 200) return false;
    *groups = json::parse(r->body)["groups"].size();
    return true;
  }
  HttpConn& client() { return c_; }

 private:
  // The answer's item count, SIZE_MAX on any failure. The whole answer is parsed and
  // checked, with simdjson: as libpq hands PostgreSQL's rows over without building
  // objects of them, the client's own parsing should not be what the phase measures.
  size_t Query(const json& body) {
    auto r = c_.Request("POST", "/v1/collections/" + coll_ + "/query", body.dump());
    simdjson::dom::element root;
    simdjson::dom::array items;
    if (r && r->status == 200 && parser_.parse(r->body).get(root) == simdjson::SUCCESS &&
        root["items"].get_array().get(items) == simdjson::SUCCESS) {
      return items.size();
    }
    static std::atomic<int> shown{0};
    if (shown++ < 5) {
      std::fprintf(stderr, "gojodb: query %s: %s\n", body.dump().c_str(),
                   r ? r->body.substr(0, 300).c_str() : c_.error().c_str());
    }
    return SIZE_MAX;
  }
  HttpConn c_;
  simdjson::dom::parser parser_;
  std::string coll_;
};

class GojoSystem final : public System {
 public:
  GojoSystem(std::string addr, std::string coll, int reclaim_wait_s)
      : coll_(std::move(coll)), reclaim_wait_s_(reclaim_wait_s) {
    auto colon = addr.rfind(':');
    host_ = addr.substr(0, colon);
    port_ = std::stoi(addr.substr(colon + 1));
  }
  std::string Name() const override { return "gojodb"; }
  bool Setup(bool indexed) override {
    GojoConn c(host_, port_, coll_);
    c.client().Request("DELETE", "/v1/collections/" + coll_);
    if (reclaim_wait_s_ > 0 && !AwaitReclaimed(c.client())) return false;
    if (!indexed) {
      auto r = c.client().Request("POST", "/v1/collections", json{{"name", coll_}}.dump());
      return r && r->status == 201;
    }
    auto r =
        c.client().Request("POST", "/v1/collections",
                           json{{"name", coll_},
                                {"indexes",
                                 {{{"name", "by_email"}, {"fields", {"email"}}, {"unique", true}},
                                  {{"name", "by_ts"}, {"fields", {"ts"}}},
                                  {{"name", "by_age"}, {"fields", {"age"}}}}}}
                               .dump());
    if (!r || r->status != 201) {
      std::fprintf(stderr, "gojodb: create collection: %s\n", r ? r->body.c_str() : "no answer");
      return false;
    }
    return true;
  }
  bool Ingest(const std::vector<Doc>& docs, int batch) override {
    GojoConn c(host_, port_, coll_);
    for (size_t first = 0; first < docs.size(); first += batch) {
      std::string body;
      for (size_t i = first; i < std::min(docs.size(), first + batch); ++i) {
        body += docs[i].Json();
        body += '\n';
      }
      auto r = c.client().Request("POST", "/v1/collections/" + coll_ + "/bulk", body,
                                  "application/x-ndjson");
      if (!r || r->status != 200 || json::parse(r->body)["failed"] != 0) {
        std::fprintf(stderr, "gojodb: bulk at %zu: %s\n", first,
                     r ? r->body.substr(0, 500).c_str() : "no answer");
        return false;
      }
    }
    return true;
  }
  std::unique_ptr<Conn> Connect() override {
    return std::make_unique<GojoConn>(host_, port_, coll_);
  }

 private:
  // Waits until no dropped collection's rows wait for deletion (gc.reclaim_pending) and
  // no deleted range waits for its compaction (the server's
  // gojodb_storage_dropped_ranges_pending). A standalone server's node queues the
  // compaction as it applies the deletion, before it reports the rows deleted.
  bool AwaitReclaimed(HttpConn& c) {
    const auto deadline = Clock::now() + std::chrono::seconds(reclaim_wait_s_);
    auto number = [&](const std::string& path, auto&& extract) -> int64_t {
      auto r = c.Request("GET", path);
      return r && r->status == 200 ? extract(r->body) : -1;
    };
    auto reclaim_pending = [&] {
      return number("/v1/cluster/status", [](const std::string& body) -> int64_t {
        auto j = json::parse(body, nullptr, false);
        if (j.is_discarded() || !j.contains("gc") || !j["gc"].is_object()) return -1;
        return j["gc"].value("reclaim_pending", int64_t{-1});
      });
    };
    auto compactions_pending = [&] {
      return number("/metrics", [](const std::string& body) -> int64_t {
        const std::string name = "\ngojodb_storage_dropped_ranges_pending ";
        const size_t at = body.find(name);
        return at == std::string::npos ? -1 : std::stoll(body.substr(at + name.size()));
      });
    };
    while (reclaim_pending() != 0 || compactions_pending() != 0) {
      if (Clock::now() >= deadline) {
        std::fprintf(stderr, "gojodb: dropped rows not deleted and compacted within %d s\n",
                     reclaim_wait_s_);
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    return true;
  }

  std::string host_, coll_;
  int reclaim_wait_s_ = 0;
  int port_ = 0;
};

// --- PostgreSQL over libpq -----------------------------------------------------------

#ifdef GOJODB_BENCH_WITH_POSTGRES
class PgConn final : public Conn {
 public:
  explicit PgConn(const std::string& conninfo) : pg_(PQconnectdb(conninfo.c_str())) {}
  ~PgConn() override { PQfinish(pg_); }
  bool ok() const { return PQstatus(pg_) == CONNECTION_OK; }
  bool Exec(const char* sql) {
    PGresult* r = PQexec(pg_, sql);
    const bool good = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!good) std::fprintf(stderr, "postgres: %s: %s", sql, PQerrorMessage(pg_));
    PQclear(r);
    return good;
  }
  bool Point(const std::string& email) override {
    const char* params[] = {email.c_str()};
    return Rows("SELECT id, doc FROM docs WHERE doc->>'email' = $1", 1, params) == 1;
  }
  size_t Range(uint64_t lo, uint64_t hi) override {
    const std::string a = std::to_string(lo), b = std::to_string(hi);
    const char* params[] = {a.c_str(), b.c_str()};
    return Rows(
        "SELECT id, doc FROM docs WHERE (doc->>'ts')::bigint >= $1::bigint AND "
        "(doc->>'ts')::bigint < $2::bigint ORDER BY id LIMIT 1000",
        2, params);
  }
  bool GroupBy(size_t* groups) override {
    size_t n =
        Rows("SELECT doc->>'city', count(*), avg((doc->>'score')::float8) FROM docs GROUP BY 1", 0,
             nullptr);
    if (n == SIZE_MAX) return false;
    *groups = n;
    return true;
  }
  PGconn* raw() { return pg_; }

 private:
  size_t Rows(const char* sql, int n, const char* const* params) {
    PGresult* r = PQexecParams(pg_, sql, n, nullptr, params, nullptr, nullptr, 0);
    size_t rows =
        PQresultStatus(r) == PGRES_TUPLES_OK ? static_cast<size_t>(PQntuples(r)) : SIZE_MAX;
    PQclear(r);
    return rows;
  }
  PGconn* pg_;
};

class PgSystem final : public System {
 public:
  explicit PgSystem(std::string conninfo) : conninfo_(std::move(conninfo)) {}
  std::string Name() const override { return "postgres"; }
  bool Setup(bool indexed) override {
    PgConn c(conninfo_);
    if (!c.ok()) return false;
    if (!indexed) {
      return c.Exec("DROP TABLE IF EXISTS docs") &&
             c.Exec("CREATE TABLE docs (id text PRIMARY KEY, doc jsonb NOT NULL)");
    }
    return c.Exec("DROP TABLE IF EXISTS docs") &&
           c.Exec("CREATE TABLE docs (id text PRIMARY KEY, doc jsonb NOT NULL)") &&
           c.Exec("CREATE UNIQUE INDEX docs_email ON docs ((doc->>'email'))") &&
           c.Exec("CREATE INDEX docs_ts ON docs (((doc->>'ts')::bigint))") &&
           c.Exec("CREATE INDEX docs_age ON docs (((doc->>'age')::int))");
  }
  bool Ingest(const std::vector<Doc>& docs, int batch) override {
    PgConn c(conninfo_);
    if (!c.ok() || !c.Exec("BEGIN")) return false;
    PGresult* r = PQexec(c.raw(), "COPY docs (id, doc) FROM STDIN");
    const bool in_copy = PQresultStatus(r) == PGRES_COPY_IN;
    PQclear(r);
    if (!in_copy) return false;
    std::string buf;
    for (size_t i = 0; i < docs.size(); ++i) {
      buf += docs[i].id;
      buf += '\t';
      buf += docs[i].Json();  // no tab, backslash or newline in a generated document
      buf += '\n';
      if ((i + 1) % batch == 0 || i + 1 == docs.size()) {
        if (PQputCopyData(c.raw(), buf.data(), static_cast<int>(buf.size())) != 1) return false;
        buf.clear();
      }
    }
    if (PQputCopyEnd(c.raw(), nullptr) != 1) return false;
    r = PQgetResult(c.raw());
    const bool good = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!good) std::fprintf(stderr, "postgres: COPY: %s", PQerrorMessage(c.raw()));
    PQclear(r);
    return good && c.Exec("COMMIT") && c.Exec("ANALYZE docs");
  }
  std::unique_ptr<Conn> Connect() override { return std::make_unique<PgConn>(conninfo_); }

 private:
  std::string conninfo_;
};
#endif

// --- Phases --------------------------------------------------------------------------

struct Rate {
  double ops_per_s = 0;
  double p50_ms = 0, p99_ms = 0;
  uint64_t errors = 0;
};

// `threads` clients run op(conn, rng) for `seconds`; false from op is an error.
template <typename Op>
Rate Drive(System& sys, const Options& o, Op op) {
  std::vector<gojodb::bench::LatencyHistogram> hist(o.threads);
  std::atomic<uint64_t> errors{0};
  const auto end = Clock::now() + std::chrono::seconds(o.seconds);
  std::vector<std::thread> ts;
  const auto start = Clock::now();
  for (int t = 0; t < o.threads; ++t) {
    ts.emplace_back([&, t] {
      auto conn = sys.Connect();
      std::mt19937_64 rng(o.seed * 1000 + t);
      while (Clock::now() < end) {
        const auto a = Clock::now();
        const bool good = op(*conn, rng);
        hist[t].Record(static_cast<uint64_t>(
            std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - a).count()));
        if (!good) ++errors;
      }
    });
  }
  for (auto& t : ts) t.join();
  const double secs = std::chrono::duration<double>(Clock::now() - start).count();
  gojodb::bench::LatencyHistogram all;
  for (const auto& h : hist) all.Merge(h);
  return {static_cast<double>(all.count()) / secs, all.ValueAtQuantile(0.5) / 1000.0,
          all.ValueAtQuantile(0.99) / 1000.0, errors.load()};
}

// Every phase on every system, the systems taking turns: --rounds times each, in the
// order given in even rounds and reversed in odd ones, so that a machine that speeds up
// or slows down during the run weighs on every system alike. Each ingest round starts
// from an empty collection/table (without indexes, then with them); the query phases
// run on what the last round loaded. A system's figure for a phase is the mean of its
// rounds (for group-by, of each round's median of --repeat runs); its `rounds` lists
// them. A system that fails a phase stops there (its "error" says which).
json RunSystems(const std::vector<System*>& systems, const Options& o,
                const std::vector<Doc>& docs) {
  std::vector<json> out;
  std::vector<bool> failed(systems.size(), false);
  for (System* s : systems) out.push_back(json{{"system", s->Name()}});
  auto turns = [&](int round) {
    std::vector<size_t> order(systems.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = round % 2 ? order.size() - 1 - i : i;
    return order;
  };
  auto fail = [&](size_t i, std::string what) {
    if (!failed[i]) out[i]["error"] = std::move(what);
    failed[i] = true;
  };
  // Appends one round's figure of `phase` (value[key]) to system i's rounds.
  auto record = [&](size_t i, const char* phase, json value) {
    out[i]["rounds"][phase].push_back(std::move(value));
  };
  auto ingest = [&](size_t i, bool indexed) {
    System& sys = *systems[i];
    if (!sys.Setup(indexed)) return fail(i, "setup failed");
    const auto a = Clock::now();
    if (!sys.Ingest(docs, o.batch)) {
      return fail(i, indexed ? "ingest failed" : "ingest without indexes failed");
    }
    const double secs = std::chrono::duration<double>(Clock::now() - a).count();
    record(i, indexed ? "ingest" : "ingest_plain",
           {{"seconds", secs}, {"docs_per_s", docs.size() / secs}});
    std::fprintf(stderr, "%s: ingest%s %.1f s, %.0f docs/s\n", sys.Name().c_str(),
                 indexed ? "" : " (no indexes)", secs, docs.size() / secs);
  };
  for (int r = 0; r < o.rounds && !o.queries_only; ++r) {
    for (bool indexed : {false, true}) {
      for (size_t i : turns(r)) {
        if (!failed[i]) ingest(i, indexed);
      }
    }
  }
  const uint64_t n = docs.size();
  const uint64_t width = 200;  // ts spans 10·docs: about 20 documents
  auto rate_json = [](const Rate& r) {
    return json{{"ops_per_s", r.ops_per_s},
                {"p50_ms", r.p50_ms},
                {"p99_ms", r.p99_ms},
                {"errors", r.errors}};
  };
  for (const char* phase : {"point", "range"}) {
    for (int r = 0; r < o.rounds; ++r) {
      for (size_t i : turns(r)) {
        if (failed[i]) continue;
        Rate rate;
        if (std::string_view(phase) == "point") {
          rate = Drive(*systems[i], o, [&](Conn& c, std::mt19937_64& rng) {
            return c.Point("u" + std::to_string(rng() % n) + "@example.com");
          });
        } else {
          rate = Drive(*systems[i], o, [&](Conn& c, std::mt19937_64& rng) {
            const uint64_t lo = rng() % (10 * n - width);
            return c.Range(lo, lo + width) != SIZE_MAX;
          });
        }
        record(i, phase, rate_json(rate));
      }
    }
  }
  for (int r = 0; r < o.rounds; ++r) {
    for (size_t i : turns(r)) {
      if (failed[i]) continue;
      auto conn = systems[i]->Connect();
      std::vector<double> secs;
      for (int k = 0; k < o.repeat; ++k) {
        size_t groups = 0;
        const auto a = Clock::now();
        if (!conn->GroupBy(&groups) || groups != 50) {
          fail(i, "group-by answered " + std::to_string(groups) + " groups");
          break;
        }
        secs.push_back(std::chrono::duration<double>(Clock::now() - a).count());
      }
      if (secs.empty()) continue;
      std::sort(secs.begin(), secs.end());
      record(i, "groupby", {{"median_s", secs[secs.size() / 2]}});
    }
  }
  // Each phase's figures: the means of its rounds.
  json results = json::array();
  for (auto& sys : out) {
    if (sys.contains("rounds")) {
      for (auto& [phase, rounds] : sys["rounds"].items()) {
        json mean = json::object();
        for (auto& [key, first] : rounds[0].items()) {
          double sum = 0;
          for (const auto& round : rounds) sum += round[key].get<double>();
          mean[key] = sum / static_cast<double>(rounds.size());
        }
        sys[phase] = std::move(mean);
      }
    }
    std::fprintf(stderr, "%s\n", sys.dump().c_str());
    results.push_back(std::move(sys));
  }
  return results;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"JSON documents: GojoDB (HTTP) against PostgreSQL JSONB (libpq)"};
  app.add_option("--gojodb", o.gojodb, "GojoDB HTTP address host:port");
  app.add_option("--postgres", o.postgres, "PostgreSQL connection string");
  app.add_option("--docs", o.docs, "documents");
  app.add_option("--threads", o.threads, "client threads of the query phases");
  app.add_option("--seconds", o.seconds, "length of each query phase");
  app.add_option("--batch", o.batch, "lines per bulk request / COPY buffer");
  app.add_option("--repeat", o.repeat, "group-by runs a round (the median is its figure)");
  app.add_option("--rounds", o.rounds, "rounds of every phase, the systems taking turns")
      ->check(CLI::Range(1, 100));
  app.add_option("--seed", o.seed, "random seed");
  app.add_option("--collection", o.collection, "GojoDB collection (dropped and re-created)");
  app.add_flag("--queries-only", o.queries_only,
               "skip the ingest phases: query what an earlier run with the same --docs and "
               "--seed loaded");
  app.add_option("--reclaim-wait", o.reclaim_wait_s,
                 "GojoDB: seconds to wait for a dropped collection's rows to be deleted before "
                 "the next ingest round (0: do not wait)");
  CLI11_PARSE(app, argc, argv);
  if (o.gojodb.empty() && o.postgres.empty()) {
    std::fprintf(stderr, "gojodb-docs-bench: give --gojodb, --postgres or both\n");
    return 2;
  }
  const auto docs = Generate(o);
  std::vector<std::unique_ptr<System>> owned;
  if (!o.gojodb.empty())
    owned.push_back(std::make_unique<GojoSystem>(o.gojodb, o.collection, o.reclaim_wait_s));
  if (!o.postgres.empty()) {
#ifdef GOJODB_BENCH_WITH_POSTGRES
    owned.push_back(std::make_unique<PgSystem>(o.postgres));
#else
    std::fprintf(stderr, "gojodb-docs-bench: built without libpq (apt-get install libpq-dev)\n");
    return 2;
#endif
  }
  std::vector<System*> systems;
  for (auto& s : owned) systems.push_back(s.get());
  const json results = RunSystems(systems, o, docs);
  std::printf("%s\n", json{{"docs", o.docs},
                           {"threads", o.threads},
                           {"seconds", o.seconds},
                           {"seed", o.seed},
                           {"rounds", o.rounds},
                           {"results", results}}
                          .dump(2)
                          .c_str());
  bool failed = false;
  for (const auto& r : results) failed = failed || r.contains("error");
  return failed ? 1 : 0;
}
