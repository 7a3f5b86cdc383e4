// Runs whole command lines and shell scripts against an in-memory backend.
#include "cmd/cli/commands.h"

#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cmd/cli/shell.h"

namespace gojodb::cli {
namespace {

// A small in-memory KvService with the server's error behaviour.
class FakeKv final : public kv::KvService {
 public:
  FakeKv() {
    limits_.max_scan_limit = 2;  // small pages, so that the CLI has to follow them
    collections_["default"] = {"default", 1, 1, "", {}};
  }

  Result<kv::WriteResult> Put(const kv::PutRequest& req) override {
    ASSIGN_OR_RETURN(auto* rows, Rows(req.collection));
    return Write(*rows, req.key, req.value, req.if_version, /*is_delete=*/false);
  }
  Result<kv::WriteResult> Delete(const kv::DeleteRequest& req) override {
    ASSIGN_OR_RETURN(auto* rows, Rows(req.collection));
    return Write(*rows, req.key, "", req.if_version, /*is_delete=*/true);
  }
  Result<kv::GetResult> Get(const kv::GetRequest& req) override {
    gets.push_back(req);
    ASSIGN_OR_RETURN(auto* rows, Rows(req.collection));
    auto it = rows->find(req.key);
    if (it == rows->end()) return kv::GetResult{};
    return kv::GetResult{true, it->second.first, it->second.second};
  }
  Result<kv::ScanResult> Scan(const kv::ScanRequest& req) override {
    scans.push_back(req);
    ASSIGN_OR_RETURN(auto* rows, Rows(req.collection));
    std::vector<kv::KeyValue> in_range;
    for (const auto& [k, v] : *rows) {
      if (!req.start.empty() && k < req.start) continue;
      if (!req.end.empty() && k >= req.end) continue;
      if (k.compare(0, req.prefix.size(), req.prefix) != 0) continue;
      in_range.push_back({k, v.first, v.second});
    }
    if (req.reverse) std::reverse(in_range.begin(), in_range.end());
    const size_t limit =
        std::min(req.limit == 0 ? limits_.max_scan_limit : req.limit, limits_.max_scan_limit);
    kv::ScanResult out;
    out.read_ts = 500 + scans.size();
    for (size_t i = 0; i < in_range.size(); ++i) {
      if (i == limit) {
        // Forward: the next start; reverse: the exclusive end, just past the next key.
        out.next = req.reverse ? in_range[i - 1].key : in_range[i].key;
        break;
      }
      out.items.push_back(in_range[i]);
    }
    return out;
  }
  Result<kv::WriteResult> Batch(const kv::BatchRequest&) override {
    return Status::Unimplemented("batch");
  }
  Result<kv::CollectionInfo> CreateCollection(const kv::CollectionSpec& spec) override {
    if (collections_.count(spec.name)) {
      return Status::AlreadyExists("collection '" + spec.name + "' already exists");
    }
    kv::CollectionInfo info{spec.name, static_cast<uint32_t>(collections_.size() + 1), 7,
                            spec.schema_json, spec.indexes};
    collections_[spec.name] = info;
    return info;
  }
  Result<std::vector<kv::CollectionInfo>> ListCollections() override {
    std::vector<kv::CollectionInfo> out;
    for (const auto& [name, info] : collections_) out.push_back(info);
    return out;
  }
  Result<kv::CollectionInfo> DescribeCollection(const std::string& name) override {
    auto it = collections_.find(name);
    if (it == collections_.end()) return NoCollection(name);
    return it->second;
  }
  Status DropCollection(const std::string& name) override {
    if (!collections_.erase(name)) return NoCollection(name);
    data_.erase(name);
    return Status::OK();
  }
  const kv::Limits& limits() const override { return limits_; }
  Status Ready() override { return Status::OK(); }
  std::map<std::string, uint64_t> StorageStats() override { return {}; }

  std::vector<kv::GetRequest> gets;
  std::vector<kv::ScanRequest> scans;

 private:
  using RowMap = std::map<std::string, std::pair<std::string, uint64_t>>;

  static Status NoCollection(const std::string& name) {
    return Status::NotFound("collection '" + name + "' does not exist");
  }
  Result<RowMap*> Rows(const std::string& collection) {
    const std::string name = collection.empty() ? "default" : collection;
    if (!collections_.count(name)) return NoCollection(name);
    return &data_[name];
  }
  Result<kv::WriteResult> Write(RowMap& rows, const std::string& key, const std::string& value,
                                std::optional<uint64_t> if_version, bool is_delete) {
    if (key.empty()) return Status::InvalidArgument("empty key");
    auto it = rows.find(key);
    const uint64_t current = it == rows.end() ? 0 : it->second.second;
    if (if_version && *if_version != current) {
      return Status::FailedPrecondition("version mismatch")
          .WithDetail("current_version", std::to_string(current));
    }
    const uint64_t version = ++clock_;
    if (is_delete) {
      rows.erase(key);
    } else {
      rows[key] = {value, version};
    }
    return kv::WriteResult{version, it != rows.end() || (is_delete && current != 0)};
  }

  kv::Limits limits_;
  uint64_t clock_ = 0;
  std::map<std::string, kv::CollectionInfo> collections_;
  std::map<std::string, RowMap> data_;
};

class FakeBackend final : public Backend {
 public:
  explicit FakeBackend(FakeKv* kv) : kv_(kv) {}
  kv::KvService& kv() override { return *kv_; }
  Result<v1::ClusterStatusResponse> ClusterStatus() override {
    v1::ClusterStatusResponse s;
    s.set_mode("standalone");
    s.set_version("9.9.9");
    return s;
  }

 private:
  FakeKv* kv_;
};

class CommandsTest : public ::testing::Test {
 protected:
  CommandsTest() {
    Io io;
    io.in = &in_;
    io.out = &out_;
    io.err = &err_;
    cli_ = std::make_unique<Cli>(
        GlobalOptions{},
        [this](const std::string& addr, int) -> Result<std::unique_ptr<Backend>> {
          connected_addrs_.push_back(addr);
          if (addr == "down:1") return Status::Unavailable("failed to connect to all addresses");
          return std::unique_ptr<Backend>(new FakeBackend(&kv_));
        },
        io, "1.0.0");
  }

  // Runs one command line; keeps its output in out() and err().
  int Run(std::vector<std::string> args) {
    out_.str("");
    err_.str("");
    return cli_->Run(args);
  }
  int Shell(const std::string& script) {
    in_.str(script);
    in_.clear();
    return Run({"shell"});
  }
  std::string out() const { return out_.str(); }
  std::string err() const { return err_.str(); }

  FakeKv kv_;
  std::istringstream in_;
  std::ostringstream out_, err_;
  std::vector<std::string> connected_addrs_;
  std::unique_ptr<Cli> cli_;
};

TEST_F(CommandsTest, PutThenGetPrintsTheValue) {
  ASSERT_EQ(Run({"put", "k", "hello world"}), 0) << err();
  EXPECT_EQ(out(), "OK version=1\n");
  ASSERT_EQ(Run({"get", "k"}), 0) << err();
  EXPECT_EQ(out(), "hello world\n");
  EXPECT_EQ(err(), "");
}

TEST_F(CommandsTest, GetMissingKeyExitsOne) {
  EXPECT_EQ(Run({"get", "nope"}), 1);
  EXPECT_EQ(out(), "");
  EXPECT_EQ(err(), "error: NOT_FOUND: key 'nope' does not exist in collection 'default'\n");
}

TEST_F(CommandsTest, UnknownCollectionExitsOne) {
  EXPECT_EQ(Run({"collections", "describe", "ghost"}), 1);
  EXPECT_EQ(err(), "error: NOT_FOUND: collection 'ghost' does not exist\n");
  EXPECT_EQ(Run({"collections", "drop", "ghost"}), 1);
  EXPECT_EQ(Run({"put", "--collection", "ghost", "k", "v"}), 1);
}

TEST_F(CommandsTest, UsageErrorsExitTwoWithoutARequest) {
  const std::vector<std::vector<std::string>> bad = {
      {},
      {"frobnicate"},
      {"put", "k"},
      {"put", "k", "v", "extra"},
      {"get", "k", "--bogus"},
      {"get", "k", "--consistency", "eventual"},
      {"get", "k", "--at", "5", "--consistency", "stale"},
      {"get", ""},
      {"scan", "--limit", "0"},
      {"scan", "--limit", "-3"},
      {"put", "k", "v", "--if-version", "abc"},
      {"delete", "k", "--if-version", "-1"},
      {"get", "k", "--at", "-1"},
      {"put", "k", "v", "--if-version", "18446744073709551616"},
      {"--output", "yaml", "get", "k"},
      {"collections"},
      {"collections", "create", "c", "--index", "noseparator"},
      {"cluster"},
  };
  std::vector<std::string> usage_lines;
  for (const auto& args : bad) {
    EXPECT_EQ(Run(args), 2) << ::testing::PrintToString(args);
    const std::string e = err();
    EXPECT_EQ(e.rfind("error: ", 0), 0u) << e;
    EXPECT_EQ(std::count(e.begin(), e.end(), '\n'), 1) << e;
    usage_lines.push_back(e);
  }
  EXPECT_TRUE(kv_.gets.empty());
  EXPECT_TRUE(kv_.scans.empty());
  EXPECT_TRUE(connected_addrs_.empty());
  EXPECT_EQ(usage_lines[1], "error: unknown command 'frobnicate' (run 'gojodb --help')\n");
  EXPECT_EQ(usage_lines[7], "error: KEY must not be empty (run 'gojodb get --help')\n");
}

TEST_F(CommandsTest, HelpExitsZero) {
  EXPECT_EQ(Run({"--help"}), 0);
  EXPECT_NE(out().find("collections"), std::string::npos);
  EXPECT_EQ(Run({"scan", "--help"}), 0);
  EXPECT_NE(out().find("--reverse"), std::string::npos);
}

TEST_F(CommandsTest, VersionConflictShowsTheCurrentVersion) {
  ASSERT_EQ(Run({"put", "k", "v1"}), 0);
  EXPECT_EQ(Run({"put", "k", "v2", "--if-version", "0"}), 3);
  EXPECT_EQ(err(), "error: FAILED_PRECONDITION: version mismatch [current_version=1]\n");
  EXPECT_EQ(Run({"put", "k", "v2", "--if-version", "1"}), 0) << err();
  EXPECT_EQ(Run({"delete", "k", "--if-version", "1"}), 3);
  EXPECT_EQ(Run({"delete", "k", "--if-version", "2"}), 0) << err();
  EXPECT_EQ(Run({"get", "k"}), 1);
}

TEST_F(CommandsTest, ServerErrorsExitThree) {
  EXPECT_EQ(Run({"--addr", "down:1", "get", "k"}), 3);
  EXPECT_EQ(err(), "error: UNAVAILABLE: server down:1: failed to connect to all addresses\n");
  EXPECT_EQ(Run({"collections", "create", "default"}), 3);
  EXPECT_EQ(err(), "error: ALREADY_EXISTS: collection 'default' already exists\n");
}

TEST_F(CommandsTest, GlobalFlagsMayFollowTheCommand) {
  ASSERT_EQ(Run({"collections", "create", "c2"}), 0) << err();
  ASSERT_EQ(Run({"put", "k", "in-c2", "--collection", "c2"}), 0) << err();
  EXPECT_EQ(Run({"get", "k"}), 1);  // not in default
  ASSERT_EQ(Run({"get", "k", "-c", "c2", "--output", "json"}), 0) << err();
  EXPECT_EQ(nlohmann::json::parse(out())["value"], "in-c2");
  EXPECT_EQ(Run({"--addr", "elsewhere:9", "get", "k", "-c", "c2"}), 0);
  EXPECT_EQ(connected_addrs_.back(), "elsewhere:9");
}

TEST_F(CommandsTest, ArgumentsNamedLikeCommandsAreArguments) {
  ASSERT_EQ(Run({"put", "get", "version"}), 0) << err();
  ASSERT_EQ(Run({"get", "get"}), 0) << err();
  EXPECT_EQ(out(), "version\n");
  ASSERT_EQ(Run({"collections", "create", "list"}), 0) << err();
  EXPECT_EQ(out(), "created collection 'list' (id 2)\n");
}

TEST_F(CommandsTest, ValuesStartingWithADashAfterSeparator) {
  ASSERT_EQ(Run({"put", "k", "--", "--not-a-flag"}), 0) << err();
  ASSERT_EQ(Run({"get", "k"}), 0);
  EXPECT_EQ(out(), "--not-a-flag\n");
  ASSERT_EQ(Run({"put", "n", "-5"}), 0) << err();
  ASSERT_EQ(Run({"get", "n"}), 0);
  EXPECT_EQ(out(), "-5\n");
}

TEST_F(CommandsTest, PutDashReadsStdin) {
  in_.str(std::string("line1\nbin\x00\xff", 11));
  ASSERT_EQ(Run({"put", "k", "-"}), 0) << err();
  ASSERT_EQ(Run({"get", "k", "--output", "json"}), 0);
  EXPECT_EQ(nlohmann::json::parse(out())["value_base64"], "bGluZTEKYmluAP8=");
}

TEST_F(CommandsTest, GetAtIsASnapshotRead) {
  ASSERT_EQ(Run({"put", "k", "v"}), 0);
  ASSERT_EQ(Run({"get", "k", "--at", "77"}), 0) << err();
  EXPECT_EQ(kv_.gets.back().consistency, kv::Consistency::kSnapshot);
  EXPECT_EQ(kv_.gets.back().at, 77u);
  ASSERT_EQ(Run({"get", "k", "--consistency", "stale"}), 0) << err();
  EXPECT_EQ(kv_.gets.back().consistency, kv::Consistency::kStale);
}

TEST_F(CommandsTest, ScanOnePageByDefaultAndSaysThereIsMore) {
  for (const char* k : {"a", "b", "c", "d", "e"}) ASSERT_EQ(Run({"put", k, "v"}), 0);
  ASSERT_EQ(Run({"scan"}), 0) << err();
  EXPECT_EQ(out(),
            "KEY  VERSION  VALUE\n"
            "a    1        v\n"
            "b    2        v\n"
            "(2 rows; more from \"c\": pass it as START, or use --all)\n");
  EXPECT_EQ(kv_.scans.size(), 1u);
}

TEST_F(CommandsTest, ScanLimitFollowsPagesAtOneSnapshot) {
  for (const char* k : {"a", "b", "c", "d", "e"}) ASSERT_EQ(Run({"put", k, "v"}), 0);
  ASSERT_EQ(Run({"scan", "--limit", "3", "--output", "json"}), 0) << err();
  auto doc = nlohmann::json::parse(out());
  ASSERT_EQ(doc["items"].size(), 3u);
  EXPECT_EQ(doc["items"][2]["key"], "c");
  EXPECT_EQ(doc["next"], "d");
  ASSERT_EQ(kv_.scans.size(), 2u);
  EXPECT_EQ(kv_.scans[1].start, "c");
  EXPECT_EQ(kv_.scans[1].limit, 1u);
  EXPECT_EQ(kv_.scans[1].consistency, kv::Consistency::kSnapshot);
  EXPECT_EQ(kv_.scans[1].at, doc["read_ts"].get<uint64_t>());
}

TEST_F(CommandsTest, ScanAllReverseWithRange) {
  for (const char* k : {"a", "b", "c", "d", "e"}) ASSERT_EQ(Run({"put", k, "v"}), 0);
  ASSERT_EQ(Run({"scan", "b", "e", "--reverse", "--all", "-o", "json"}), 0) << err();
  auto doc = nlohmann::json::parse(out());
  std::vector<std::string> keys;
  for (const auto& item : doc["items"]) keys.push_back(item["key"]);
  EXPECT_EQ(keys, (std::vector<std::string>{"d", "c", "b"}));
  EXPECT_TRUE(doc["next"].is_null());
  EXPECT_EQ(kv_.scans[0].start, "b");
  EXPECT_EQ(kv_.scans[0].end, "e");
}

TEST_F(CommandsTest, ScanPrefix) {
  for (const char* k : {"u:1", "u:2", "v:1"}) ASSERT_EQ(Run({"put", k, "v"}), 0);
  ASSERT_EQ(Run({"scan", "--prefix", "v:"}), 0) << err();
  EXPECT_EQ(out(), "KEY  VERSION  VALUE\nv:1  3        v\n(1 row)\n");
}

TEST_F(CommandsTest, Collections) {
  ASSERT_EQ(Run({"collections", "create", "users", "--schema", R"({"type":"object"})", "--index",
                 "by_age:age", "--index", "by_email:email:unique"}),
            0)
      << err();
  ASSERT_EQ(Run({"collections", "describe", "users", "--output", "json"}), 0) << err();
  auto doc = nlohmann::json::parse(out());
  EXPECT_EQ(doc["indexes"][1]["name"], "by_email");
  EXPECT_EQ(doc["indexes"][1]["unique"], true);
  EXPECT_EQ(doc["schema"]["type"], "object");
  ASSERT_EQ(Run({"collections", "list"}), 0);
  EXPECT_NE(out().find("users"), std::string::npos);
  ASSERT_EQ(Run({"collections", "drop", "users"}), 0);
  EXPECT_EQ(out(), "dropped collection 'users'\n");
  EXPECT_EQ(Run({"collections", "describe", "users"}), 1);
}

TEST_F(CommandsTest, ClusterStatusAndVersion) {
  ASSERT_EQ(Run({"cluster", "status"}), 0) << err();
  EXPECT_NE(out().find("mode:    standalone"), std::string::npos);
  ASSERT_EQ(Run({"version"}), 0);
  EXPECT_EQ(out(), "client: gojodb 1.0.0\nserver: gojodb 9.9.9 (standalone)\n");
  ASSERT_EQ(Run({"--addr", "down:1", "version", "--client"}), 0);
  EXPECT_EQ(out(), "client: gojodb 1.0.0\n");
  EXPECT_EQ(Run({"--addr", "down:1", "version"}), 3);
}

TEST_F(CommandsTest, DefaultAddr) {
  EXPECT_EQ(DefaultAddr(nullptr), "127.0.0.1:7001");
  EXPECT_EQ(DefaultAddr(""), "127.0.0.1:7001");
  EXPECT_EQ(DefaultAddr("db:9000"), "db:9000");
}

TEST_F(CommandsTest, ScriptedShell) {
  int status = Shell(
      "# a comment\n"
      "put \"my key\" 'a \"quoted\" value'\n"
      "get \"my key\"\n"
      "collections create c2\n"
      "use c2\n"
      "put k in-c2\n"
      "output json\n"
      "get k\n"
      "use default\n"
      "get k --output table\n");
  EXPECT_EQ(status, 1);  // the last failing command: k is not in default
  EXPECT_EQ(out(),
            "OK version=1\n"
            "a \"quoted\" value\n"
            "created collection 'c2' (id 2)\n"
            "OK version=2\n"
            "{\"key\":\"k\",\"value\":\"in-c2\",\"version\":2}\n");
  EXPECT_EQ(err(), "error: NOT_FOUND: key 'k' does not exist in collection 'default'\n");
}

TEST_F(CommandsTest, ShellStatusIsTheLastFailure) {
  EXPECT_EQ(Shell("put k v\nget k\n"), 0);
  EXPECT_EQ(Shell("get missing\nput k v\n"), 1);
  EXPECT_EQ(Shell("put \"unterminated\nget k\n"), 2);
  EXPECT_EQ(err(), "error: unterminated double quote at column 5\n");
  EXPECT_EQ(Shell("get missing\nput k v --if-version 99\nget k\n"), 3);
  EXPECT_EQ(Shell("use ghost\n"), 1);
  EXPECT_EQ(Shell("put k -\n"), 2);  // stdin is the script
  EXPECT_EQ(Shell("shell\n"), 2);
}

TEST_F(CommandsTest, ShellStopsAtExit) {
  EXPECT_EQ(Shell("put a 1\nexit\nput b 2\n"), 0);
  EXPECT_EQ(Run({"get", "b"}), 1);
  EXPECT_EQ(Shell("quit\nget missing\n"), 0);
}

TEST_F(CommandsTest, ShellHelp) {
  EXPECT_EQ(Shell("help\n"), 0);
  EXPECT_NE(out().find("use COLLECTION"), std::string::npos);
  EXPECT_EQ(Shell("help scan\n"), 0);
  EXPECT_NE(out().find("--prefix"), std::string::npos);
}

TEST_F(CommandsTest, ShellStartsFromTheLineFlags) {
  ASSERT_EQ(Run({"collections", "create", "c2"}), 0);
  EXPECT_EQ(Shell("put k v\n"), 0);
  in_.str("put k v\n");
  in_.clear();
  ASSERT_EQ(Run({"-c", "c2", "shell"}), 0) << err();
  EXPECT_EQ(kv_.DescribeCollection("c2").ok(), true);
  ASSERT_EQ(Run({"get", "k", "-c", "c2"}), 0);
}

}  // namespace
}  // namespace gojodb::cli
