// Runs whole command lines and shell scripts against an in-memory backend.
#include "cmd/cli/commands.h"

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cmd/cli/shell.h"
#include "core/kv/ingest_fake.h"

namespace gojodb::cli {
namespace {

// A small in-memory KvService with the server's error behaviour.
class FakeKv final : public kv::KvService {
 public:
  FakeKv() {
    limits_.max_scan_limit = 2;  // small pages, so that the CLI has to follow them
    collections_["default"] = {"default", 1, 1, "", {}};
    ingest.write = [this](const std::string& collection, const kv::IngestRecord& r) {
      return Put({collection, r.key, r.value, std::nullopt, ""}).status();
    };
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
  // Transactions: writes buffered by id until commit (no snapshot: enough for the CLI).
  Result<kv::TxnHandle> BeginTxn() override {
    const std::string id = "t" + std::to_string(++txn_ids_);
    txns_[id];
    return kv::TxnHandle{id, 100 + txn_ids_};
  }
  Result<kv::GetResult> TxnGet(const std::string& txn, const kv::TxnRead& read) override {
    auto t = txns_.find(txn);
    if (t == txns_.end()) return Status::NotFound("no transaction " + txn);
    for (const auto& op : t->second) {
      if (op.key == read.key) return kv::GetResult{op.kind == kv::BatchOp::Kind::kPut, op.value, 0};
    }
    return Get({read.collection, read.key, kv::Consistency::kSnapshot, 1});
  }
  Status TxnWrite(const std::string& txn, const kv::BatchOp& op) override {
    auto t = txns_.find(txn);
    if (t == txns_.end()) return Status::NotFound("no transaction " + txn);
    t->second.push_back(op);
    return Status::OK();
  }
  Result<kv::ScanResult> TxnScan(const std::string& txn, const kv::ScanRequest& req) override {
    if (!txns_.count(txn)) return Status::NotFound("no transaction " + txn);
    txn_scans.push_back(req);
    return Scan(req);
  }
  Result<uint64_t> CommitTxn(const std::string& txn) override {
    auto t = txns_.find(txn);
    if (t == txns_.end()) return Status::NotFound("no transaction " + txn);
    auto ops = std::move(t->second);
    txns_.erase(t);
    for (const auto& op : ops) {
      ASSIGN_OR_RETURN(auto* rows, Rows(op.collection));
      RETURN_IF_ERROR(
          Write(*rows, op.key, op.value, std::nullopt, op.kind == kv::BatchOp::Kind::kDelete)
              .status());
    }
    return clock_;
  }
  Status RollbackTxn(const std::string& txn) override {
    if (!txns_.erase(txn)) return Status::NotFound("no transaction " + txn);
    return Status::OK();
  }
  size_t open_txns() const { return txns_.size(); }
  std::vector<kv::ScanRequest> txn_scans;

  // Documents: a query lists the collection's rows in key order, two per page (the filter
  // is only recorded); an aggregation answers `groups`; ingest refuses keys that start
  // with "bad".
  Result<kv::QueryResult> Query(const kv::QueryRequest& req) override {
    queries.push_back(req);
    ASSIGN_OR_RETURN(auto* rows, Rows(req.collection));
    kv::QueryResult out;
    out.read_ts = 777;
    if (req.explain) out.plan_json = R"({"kind":"collection_scan"})";
    const size_t limit = req.limit == 0 ? 2 : std::min<size_t>(req.limit, 2);
    for (auto it = rows->upper_bound(req.cursor); it != rows->end(); ++it) {
      if (out.items.size() == limit) {
        out.cursor = out.items.back().key;
        break;
      }
      out.items.push_back({it->first, it->second.first, it->second.second});
    }
    return out;
  }
  Result<kv::AggregateResult> Aggregate(const kv::AggregateRequest& req) override {
    aggregations.push_back(req);
    return kv::AggregateResult{groups, 778, ""};
  }
  Result<kv::IngestResult> Ingest(const kv::IngestRequest& req) override {
    return ingest.Ingest(req);
  }
  Result<uint64_t> IngestProgress(const std::string& c, const std::string& id) override {
    return ingest.IngestProgress(c, id);
  }
  // Refuses keys that start with "bad"; writes the others as puts.
  kv::testing::IngestFake ingest{this, 10000};
  std::vector<kv::QueryRequest> queries;
  std::vector<kv::AggregateRequest> aggregations;
  std::string groups = "[]";
  int ingest_streams = 0;
  std::vector<size_t> ingest_messages;  // records per message
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
  // Builds at once, unless asked to wait less than a second (then it stays building);
  // a unique index on "dup" cannot be built.
  Result<kv::CollectionInfo> CreateIndex(const std::string& collection, const kv::IndexSpec& index,
                                         std::chrono::milliseconds wait) override {
    auto it = collections_.find(collection);
    if (it == collections_.end()) return NoCollection(collection);
    index_waits.push_back(wait);
    if (index.unique && index.fields == std::vector<std::string>{"dup"}) {
      return Status::Aborted("index '" + index.name +
                             "' cannot be built: documents 'a' and 'b' have the same values")
          .WithDetail("reason", "UNIQUE");
    }
    kv::IndexSpec added = index;
    added.state = wait < std::chrono::seconds(1) ? kv::kIndexBuilding : kv::kIndexPublic;
    it->second.indexes.push_back(added);
    return it->second;
  }
  Result<kv::CollectionInfo> DropIndex(const std::string& collection,
                                       const std::string& name) override {
    auto it = collections_.find(collection);
    if (it == collections_.end()) return NoCollection(collection);
    auto& idx = it->second.indexes;
    for (auto i = idx.begin(); i != idx.end(); ++i) {
      if (i->name == name) {
        idx.erase(i);
        return it->second;
      }
    }
    return Status::NotFound("collection '" + collection + "' has no index '" + name + "'");
  }
  std::vector<std::chrono::milliseconds> index_waits;
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
  uint64_t txn_ids_ = 0;
  std::map<std::string, std::vector<kv::BatchOp>> txns_;

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

// A small in-memory controller: two nodes, two shards, settings and a clock.
struct FakeController {
  FakeController() {
    auto* n1 = nodes.add_nodes();
    n1->mutable_node()->set_id(1);
    n1->mutable_node()->set_grpc_addr("10.0.0.1:7001");
    n1->mutable_node()->set_http_addr("10.0.0.1:8080");
    n1->mutable_node()->set_admin_state("active");
    (*n1->mutable_node()->mutable_labels())["zone"] = "a";
    n1->set_liveness("up");
    n1->mutable_stats()->set_capacity_bytes(uint64_t{1} << 40);
    n1->mutable_stats()->set_used_bytes(1536);
    n1->mutable_stats()->set_shard_count(2);
    n1->mutable_stats()->set_leader_count(1);
    auto* n2 = nodes.add_nodes();
    n2->mutable_node()->set_id(2);
    n2->mutable_node()->set_grpc_addr("10.0.0.2:7001");
    n2->mutable_node()->set_http_addr("10.0.0.2:8080");
    n2->mutable_node()->set_admin_state("active");
    n2->mutable_node()->set_capacity_bytes(512);
    n2->set_liveness("suspect");

    shard_map.set_version(7);
    auto* s1 = shard_map.add_shards();
    s1->set_id(1);
    s1->set_end_key("m");
    s1->set_conf_ver(2);
    s1->set_version(1);
    s1->set_leader(1);
    s1->add_replicas()->set_node(1);
    auto* learner = s1->add_replicas();
    learner->set_node(4);
    learner->set_learner(true);
    auto* s2 = shard_map.add_shards();
    s2->set_id(2);
    s2->set_start_key(std::string("m\x00\xff", 3));
    s2->set_conf_ver(1);
    s2->set_version(3);
    s2->add_replicas()->set_node(2);

    settings.set_replication_factor(3);
    settings.set_shard_split_bytes(64 << 20);
  }

  Status DecommissionNode(uint64_t id) {
    for (auto& n : *nodes.mutable_nodes()) {
      if (n.node().id() == id) {
        n.mutable_node()->set_admin_state("decommissioning");
        return Status::OK();
      }
    }
    return Status::NotFound("node " + std::to_string(id) + " is not registered");
  }
  Status AddController(uint64_t id, const std::string& addr) {
    if (!controllers.emplace(id, addr).second) {
      return Status::AlreadyExists("controller " + std::to_string(id) + " is a member");
    }
    return Status::OK();
  }
  Status RemoveController(uint64_t id) {
    if (!controllers.erase(id)) {
      return Status::NotFound("controller " + std::to_string(id) + " is not a member");
    }
    return Status::OK();
  }
  Result<v1::Settings> UpdateSettings(const std::string& patch_json) {
    patches.push_back(patch_json);
    auto patch = nlohmann::json::parse(patch_json);
    v1::Settings next = settings;
    for (const auto& [name, value] : patch.items()) {
      const auto* field = next.GetDescriptor()->FindFieldByName(name);
      if (field == nullptr) return Status::InvalidArgument("unknown setting '" + name + "'");
      if (field->cpp_type() == google::protobuf::FieldDescriptor::CPPTYPE_UINT32) {
        next.GetReflection()->SetUInt32(&next, field, value.get<uint32_t>());
      } else {
        next.GetReflection()->SetUInt64(&next, field, value.get<uint64_t>());
      }
    }
    if (next.replication_factor() == 0) {
      return Status::InvalidArgument("replication_factor must be at least 1");
    }
    settings = next;
    return settings;
  }
  v1::GetTimestampsResponse GetTimestamps(uint32_t count) {
    v1::GetTimestampsResponse r;
    r.set_first(next_ts);
    r.set_count(count);
    next_ts += count;
    return r;
  }

  v1::ListNodesResponse nodes;
  v1::GetShardMapResponse shard_map;
  v1::Settings settings;
  std::map<uint64_t, std::string> controllers = {{1, "10.0.1.1:7101"}};
  std::vector<std::string> patches;
  uint64_t next_ts = 1000;
  int calls = 0;
};

// An ingest session that records the records of each piece it is given (one message).
class CountingStream final : public kv::IngestStream {
 public:
  CountingStream(kv::IngestSession session, FakeKv* kv) : session_(std::move(session)), kv_(kv) {}
  Status Add(std::vector<kv::IngestRecord> records, std::vector<kv::IngestError> refused,
             uint64_t last_line) override {
    kv_->ingest_messages.push_back(records.size());
    return session_.Add(std::move(records), std::move(refused), last_line);
  }
  Result<kv::IngestSummary> Finish() override { return session_.Finish(); }

 private:
  kv::IngestSession session_;
  FakeKv* kv_;
};

class FakeBackend final : public Backend {
 public:
  FakeBackend(FakeKv* kv, FakeController* ctl, bool controller_down)
      : kv_(kv), ctl_(ctl), down_(controller_down) {}
  kv::KvService& kv() override { return *kv_; }
  Result<std::unique_ptr<kv::IngestStream>> OpenIngest(const std::string& collection,
                                                       const std::string& ingest_id) override {
    ++kv_->ingest_streams;
    ASSIGN_OR_RETURN(auto session, kv::IngestSession::Open(kv_, collection, ingest_id));
    return std::unique_ptr<kv::IngestStream>(new CountingStream(std::move(session), kv_));
  }
  Result<v1::ClusterStatusResponse> ClusterStatus() override {
    v1::ClusterStatusResponse s;
    s.set_mode("standalone");
    s.set_version("9.9.9");
    s.set_gc_safe_point(1234);
    s.set_gc_target(5678);
    s.set_gc_reclaim_pending(2);
    return s;
  }

  Result<v1::ListNodesResponse> ListNodes() override {
    RETURN_IF_ERROR(Call());
    return ctl_->nodes;
  }
  Status DecommissionNode(uint64_t node_id) override {
    RETURN_IF_ERROR(Call());
    return ctl_->DecommissionNode(node_id);
  }
  Result<v1::GetShardMapResponse> GetShardMap() override {
    RETURN_IF_ERROR(Call());
    return ctl_->shard_map;
  }
  Status AddController(uint64_t id, const std::string& grpc_addr) override {
    RETURN_IF_ERROR(Call());
    return ctl_->AddController(id, grpc_addr);
  }
  Status RemoveController(uint64_t id) override {
    RETURN_IF_ERROR(Call());
    return ctl_->RemoveController(id);
  }
  Result<v1::Settings> GetSettings() override {
    RETURN_IF_ERROR(Call());
    return ctl_->settings;
  }
  Result<v1::Settings> UpdateSettings(const std::string& patch_json) override {
    RETURN_IF_ERROR(Call());
    return ctl_->UpdateSettings(patch_json);
  }
  Result<v1::GetTimestampsResponse> GetTimestamps(uint32_t count) override {
    RETURN_IF_ERROR(Call());
    return ctl_->GetTimestamps(count);
  }

 private:
  // A server that answers only the KV API: the controller's requests fail as over gRPC
  // when the leader cannot be reached.
  Status Call() {
    ++ctl_->calls;
    if (down_) return Status::Unavailable("no controller leader").WithDetail("leader_id", "0");
    return Status::OK();
  }

  FakeKv* kv_;
  FakeController* ctl_;
  bool down_;
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
          return std::unique_ptr<Backend>(
              new FakeBackend(&kv_, &controller_, addr == "no-leader:1"));
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
  FakeController controller_;
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

TEST_F(CommandsTest, IndexesAreAddedAndDroppedOnline) {
  ASSERT_EQ(Run({"collections", "create", "people"}), 0) << err();
  ASSERT_EQ(Run({"collections", "add-index", "people", "by_city:city,age"}), 0) << err();
  EXPECT_NE(out().find("by_city(city,age)"), std::string::npos) << out();
  EXPECT_EQ(out().find("[building]"), std::string::npos) << out();
  ASSERT_EQ(kv_.index_waits.size(), 1u);
  EXPECT_EQ(kv_.index_waits[0], std::chrono::milliseconds(600000)) << "the default wait";
  // A short wait: the answer shows the index still building.
  ASSERT_EQ(Run({"collections", "add-index", "people", "by_n:n:unique", "--wait-ms", "10",
                 "--output", "json"}),
            0)
      << err();
  auto doc = nlohmann::json::parse(out());
  EXPECT_EQ(doc["indexes"][1]["name"], "by_n");
  EXPECT_EQ(doc["indexes"][1]["unique"], true);
  EXPECT_EQ(doc["indexes"][1]["state"], "building");
  EXPECT_EQ(doc["indexes"][0]["state"], "public");
  EXPECT_EQ(kv_.index_waits.back(), std::chrono::milliseconds(10));
  ASSERT_EQ(Run({"collections", "describe", "people"}), 0);
  EXPECT_NE(out().find("by_n(n) unique [building]"), std::string::npos) << out();
  // A unique build the documents break: status 3 and the server's reason.
  EXPECT_EQ(Run({"collections", "add-index", "people", "u:dup:unique"}), 3);
  EXPECT_NE(err().find("same values"), std::string::npos) << err();
  EXPECT_EQ(Run({"collections", "add-index", "people", "noseparator"}), 2) << "a usage error";
  EXPECT_EQ(Run({"collections", "add-index", "nope", "i:f"}), 1) << "no such collection";
  ASSERT_EQ(Run({"collections", "drop-index", "people", "by_city"}), 0) << err();
  EXPECT_EQ(out().find("by_city"), std::string::npos) << out();
  EXPECT_NE(out().find("by_n"), std::string::npos) << out();
  EXPECT_EQ(Run({"collections", "drop-index", "people", "by_city"}), 1) << "gone already";
}

TEST_F(CommandsTest, ClusterStatusAndVersion) {
  ASSERT_EQ(Run({"cluster", "status"}), 0) << err();
  EXPECT_NE(out().find("mode:    standalone"), std::string::npos);
  EXPECT_NE(
      out().find(
          "gc:      safe point 1234, target 5678, 2 dropped collections or indexes to delete\n"),
      std::string::npos)
      << out();
  ASSERT_EQ(Run({"cluster", "status", "-o", "json"}), 0) << err();
  EXPECT_NE(out().find(R"("gc":{"reclaim_pending":2,"safe_point":1234,"target":5678})"),
            std::string::npos)
      << out();
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

TEST_F(CommandsTest, NodeListTable) {
  ASSERT_EQ(Run({"node", "list"}), 0) << err();
  EXPECT_EQ(out(),
            "ID  ADDRESS        HTTP           STATE    ADMIN   ZONE  SHARDS  LEADERS  USED     "
            "CAPACITY\n"
            "1   10.0.0.1:7001  10.0.0.1:8080  up       active  a     2       1        1.5 KiB  "
            "1.0 TiB\n"
            "2   10.0.0.2:7001  10.0.0.2:8080  suspect  active        0       0        0 B      "
            "512 B\n");
  EXPECT_EQ(err(), "");
}

TEST_F(CommandsTest, NodeListJson) {
  ASSERT_EQ(Run({"node", "list", "-o", "json"}), 0) << err();
  auto doc = nlohmann::json::parse(out());
  ASSERT_EQ(doc["nodes"].size(), 2u);
  EXPECT_EQ(doc["nodes"][0]["id"], 1);
  EXPECT_EQ(doc["nodes"][0]["grpc_addr"], "10.0.0.1:7001");
  EXPECT_EQ(doc["nodes"][0]["liveness"], "up");
  EXPECT_EQ(doc["nodes"][0]["admin_state"], "active");
  EXPECT_EQ(doc["nodes"][0]["labels"]["zone"], "a");
  EXPECT_EQ(doc["nodes"][0]["used_bytes"], 1536);
  EXPECT_EQ(doc["nodes"][0]["capacity_bytes"], uint64_t{1} << 40);
  EXPECT_EQ(doc["nodes"][1]["capacity_bytes"], 512);  // from the registration
  EXPECT_EQ(doc["nodes"][1]["liveness"], "suspect");
}

TEST_F(CommandsTest, NodeDecommission) {
  ASSERT_EQ(Run({"node", "decommission", "2"}), 0) << err();
  EXPECT_EQ(out(), "node 2 is decommissioning: its replicas move to other nodes\n");
  EXPECT_EQ(controller_.nodes.nodes(1).node().admin_state(), "decommissioning");
  ASSERT_EQ(Run({"node", "decommission", "1", "--output", "json"}), 0) << err();
  EXPECT_EQ(out(), "{\"admin_state\":\"decommissioning\",\"node\":1}\n");
  EXPECT_EQ(Run({"node", "decommission", "9"}), 1);
  EXPECT_EQ(out(), "");
  EXPECT_EQ(err(), "error: NOT_FOUND: node 9 is not registered\n");
}

TEST_F(CommandsTest, ShardListTable) {
  ASSERT_EQ(Run({"shard", "list"}), 0) << err();
  EXPECT_EQ(out(),
            "ID  START      END    REPLICAS      LEADER  EPOCH\n"
            "1   (start)    m      1,4(learner)  1       2.1\n"
            "2   m\\x00\\xff  (end)  2             -       1.3\n");
}

TEST_F(CommandsTest, ShardListJson) {
  ASSERT_EQ(Run({"shard", "list", "-o", "json"}), 0) << err();
  auto doc = nlohmann::json::parse(out());
  EXPECT_EQ(doc["version"], 7);
  ASSERT_EQ(doc["shards"].size(), 2u);
  const auto& s1 = doc["shards"][0];
  EXPECT_EQ(s1["start_key"], "");
  EXPECT_EQ(s1["end_key"], "m");
  EXPECT_EQ(s1["replicas"][1]["node"], 4);
  EXPECT_EQ(s1["replicas"][1]["learner"], true);
  EXPECT_EQ(s1["leader"], 1);
  EXPECT_EQ(s1["conf_ver"], 2);
  EXPECT_EQ(s1["version"], 1);
  const auto& s2 = doc["shards"][1];
  EXPECT_FALSE(s2.contains("start_key"));
  EXPECT_EQ(s2["start_key_base64"], "bQD/");
  EXPECT_EQ(s2["end_key"], "");
}

TEST_F(CommandsTest, ControllerAddAndRemove) {
  ASSERT_EQ(Run({"controller", "add", "2", "10.0.1.2:7101"}), 0) << err();
  EXPECT_EQ(out(), "added controller 2 at 10.0.1.2:7101\n");
  EXPECT_EQ(controller_.controllers.at(2), "10.0.1.2:7101");
  EXPECT_EQ(Run({"controller", "add", "2", "10.0.1.2:7101"}), 3);
  EXPECT_EQ(err(), "error: ALREADY_EXISTS: controller 2 is a member\n");
  ASSERT_EQ(Run({"controller", "add", "3", "10.0.1.3:7101", "-o", "json"}), 0) << err();
  EXPECT_EQ(out(), "{\"added_controller\":3,\"grpc_addr\":\"10.0.1.3:7101\"}\n");

  ASSERT_EQ(Run({"controller", "remove", "2"}), 0) << err();
  EXPECT_EQ(out(), "removed controller 2\n");
  ASSERT_EQ(Run({"controller", "remove", "3", "-o", "json"}), 0) << err();
  EXPECT_EQ(out(), "{\"removed_controller\":3}\n");
  EXPECT_EQ(Run({"controller", "remove", "3"}), 1);
  EXPECT_EQ(err(), "error: NOT_FOUND: controller 3 is not a member\n");
  EXPECT_EQ(controller_.controllers.size(), 1u);
}

TEST_F(CommandsTest, SettingsGet) {
  ASSERT_EQ(Run({"settings", "get"}), 0) << err();
  EXPECT_EQ(out(),
            "NAME                     VALUE\n"
            "replication_factor       3\n"
            "shard_split_bytes        67108864\n"
            "gc_ttl_seconds           0\n"
            "node_suspect_timeout_ms  0\n"
            "node_dead_timeout_ms     0\n"
            "max_ops_per_round        0\n"
            "schema_lease_ms          0\n");
  ASSERT_EQ(Run({"settings", "get", "-o", "json"}), 0) << err();
  auto doc = nlohmann::json::parse(out());
  EXPECT_EQ(doc["replication_factor"], 3);
  EXPECT_EQ(doc["shard_split_bytes"], 64 << 20);
  EXPECT_EQ(doc.size(), 7u);
}

TEST_F(CommandsTest, SettingsSetSendsAnIntegerPatch) {
  ASSERT_EQ(Run({"settings", "set", "replication_factor=5", "gc_ttl_seconds=86400", "-o", "json"}),
            0)
      << err();
  ASSERT_EQ(controller_.patches.size(), 1u);
  EXPECT_EQ(controller_.patches[0], R"({"gc_ttl_seconds":86400,"replication_factor":5})");
  auto doc = nlohmann::json::parse(out());
  EXPECT_EQ(doc["replication_factor"], 5);
  EXPECT_EQ(doc["gc_ttl_seconds"], 86400);
  ASSERT_EQ(Run({"settings", "set", "max_ops_per_round=4"}), 0) << err();
  EXPECT_NE(out().find("max_ops_per_round        4\n"), std::string::npos) << out();
  // The controller checks names and ranges.
  EXPECT_EQ(Run({"settings", "set", "bogus=1"}), 3);
  EXPECT_EQ(err(), "error: INVALID_ARGUMENT: unknown setting 'bogus'\n");
  EXPECT_EQ(Run({"settings", "set", "replication_factor=0"}), 3);
  EXPECT_EQ(controller_.settings.replication_factor(), 5u);
}

TEST_F(CommandsTest, SettingsSetUsageErrors) {
  const std::vector<std::vector<std::string>> bad = {
      {"settings", "set"},
      {"settings", "set", "replication_factor"},
      {"settings", "set", "=5"},
      {"settings", "set", "replication_factor="},
      {"settings", "set", "replication_factor=five"},
      {"settings", "set", "replication_factor=-1"},
      {"settings", "set", "replication_factor=1.5"},
      {"settings", "set", "gc_ttl_seconds=18446744073709551616"},
      {"settings", "set", "replication_factor=3", "replication_factor=4"},
  };
  for (const auto& args : bad) {
    EXPECT_EQ(Run(args), 2) << ::testing::PrintToString(args);
    const std::string e = err();
    EXPECT_EQ(std::count(e.begin(), e.end(), '\n'), 1) << e;
  }
  EXPECT_EQ(err(),
            "error: replication_factor is given more than once (run 'gojodb settings set "
            "--help')\n");
  EXPECT_EQ(Run({"settings", "set", "replication_factor=five"}), 2);
  EXPECT_EQ(err(),
            "error: the value of replication_factor must be a non-negative integer, got 'five' "
            "(run 'gojodb settings set --help')\n");
  EXPECT_TRUE(controller_.patches.empty());
  EXPECT_EQ(controller_.calls, 0);
}

TEST_F(CommandsTest, Tso) {
  ASSERT_EQ(Run({"tso"}), 0) << err();
  EXPECT_EQ(out(), "1000\n");
  ASSERT_EQ(Run({"tso", "--count", "3"}), 0) << err();
  EXPECT_EQ(out(), "1001\n1002\n1003\n");
  ASSERT_EQ(Run({"tso", "--count", "2", "-o", "json"}), 0) << err();
  EXPECT_EQ(out(), "{\"timestamps\":[1004,1005]}\n");
}

TEST_F(CommandsTest, AdminUsageErrorsExitTwoWithoutARequest) {
  const std::vector<std::vector<std::string>> bad = {
      {"node"},
      {"node", "frob"},
      {"node", "decommission"},
      {"node", "decommission", "abc"},
      {"node", "decommission", "0"},
      {"node", "decommission", "-1"},
      {"node", "decommission", "1", "2"},
      {"shard"},
      {"controller"},
      {"controller", "add", "2"},
      {"controller", "add", "x", "10.0.1.2:7101"},
      {"controller", "add", "2", ""},
      {"controller", "remove"},
      {"controller", "remove", "two"},
      {"settings"},
      {"tso", "--count", "0"},
      {"tso", "--count", "65537"},
      {"tso", "--count", "many"},
  };
  for (const auto& args : bad) {
    EXPECT_EQ(Run(args), 2) << ::testing::PrintToString(args);
    const std::string e = err();
    EXPECT_EQ(e.rfind("error: ", 0), 0u) << e;
    EXPECT_EQ(std::count(e.begin(), e.end(), '\n'), 1) << e;
  }
  EXPECT_EQ(controller_.calls, 0);
  EXPECT_TRUE(connected_addrs_.empty());
  EXPECT_EQ(Run({"node", "decommission", "abc"}), 2);
  EXPECT_EQ(err(),
            "error: ID: must be a positive 64-bit integer, got 'abc' (run 'gojodb node "
            "decommission --help')\n");
  EXPECT_EQ(Run({"controller", "add", "2"}), 2);
  EXPECT_NE(err().find("ADDR"), std::string::npos) << err();
  EXPECT_EQ(Run({"tso", "--count", "65537"}), 2);
  EXPECT_EQ(err(), "error: --count must be between 1 and 65536 (run 'gojodb tso --help')\n");
}

TEST_F(CommandsTest, AdminCommandsUnavailableExitThree) {
  const std::vector<std::vector<std::string>> cmds = {
      {"node", "list"},
      {"node", "decommission", "1"},
      {"shard", "list"},
      {"controller", "add", "2", "10.0.1.2:7101"},
      {"controller", "remove", "1"},
      {"settings", "get"},
      {"settings", "set", "replication_factor=5"},
      {"tso"},
  };
  for (auto args : cmds) {
    args.insert(args.begin(), {"--addr", "no-leader:1"});
    EXPECT_EQ(Run(args), 3) << ::testing::PrintToString(args);
    EXPECT_EQ(out(), "");
    EXPECT_EQ(err(), "error: UNAVAILABLE: server no-leader:1: no controller leader [leader_id=0]\n")
        << ::testing::PrintToString(args);
  }
  EXPECT_EQ(Run({"--addr", "down:1", "node", "list"}), 3);
  EXPECT_EQ(err(), "error: UNAVAILABLE: server down:1: failed to connect to all addresses\n");
}

TEST_F(CommandsTest, AdminCommandsInTheShell) {
  EXPECT_EQ(Shell("tso\noutput json\nnode decommission 2\n"), 0);
  EXPECT_EQ(out(), "1000\n{\"admin_state\":\"decommissioning\",\"node\":2}\n");
  EXPECT_EQ(Shell("help\n"), 0);
  EXPECT_NE(out().find("settings get | set NAME=VALUE"), std::string::npos);
}

// The shell's transactions: writes wait for commit, reads see them, flags that do not
// apply are refused, and a transaction left open at the end is rolled back.
TEST_F(CommandsTest, ShellTransactionsCommitOrRollBackTogether) {
  const int status = Shell(
      "begin\n"
      "put a 1\n"
      "get a\n"
      "put b 2 --if-version 3\n"
      "begin\n"
      "scan\n"
      "commit\n"
      "get a\n"
      "begin\n"
      "put c 3\n"
      "rollback\n"
      "commit\n"
      "begin now\n"
      "begin\n"
      "put d 4\n");
  EXPECT_EQ(status, 2) << err();  // the last failure: a usage error
  const std::string o = out(), e = err();
  EXPECT_NE(o.find("transaction t1 begun at 101"), std::string::npos) << o;
  EXPECT_NE(o.find("OK (in the transaction)"), std::string::npos) << o;
  EXPECT_NE(o.find("committed at"), std::string::npos) << o;
  EXPECT_NE(o.find("rolled back"), std::string::npos) << o;
  EXPECT_NE(e.find("--if-version and --request-id do not apply inside a transaction"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("already open"), std::string::npos) << e;
  EXPECT_NE(e.find("no transaction is open"), std::string::npos) << e;
  EXPECT_NE(e.find("begin takes no arguments"), std::string::npos) << e;
  EXPECT_NE(e.find("the open transaction was rolled back"), std::string::npos) << e;
  EXPECT_EQ(kv_.txn_scans.size(), 1u);  // the scan ran inside the transaction
  EXPECT_EQ(kv_.open_txns(), 0u);
  // Committed: a and nothing else; c was rolled back and d never committed.
  ASSERT_EQ(Run({"get", "a"}), 0);
  EXPECT_EQ(out(), "1\n");
  EXPECT_EQ(Run({"get", "b"}), 1);
  EXPECT_EQ(Run({"get", "c"}), 1);
  EXPECT_EQ(Run({"get", "d"}), 1);
}

using nlohmann::json;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

TEST_F(CommandsTest, QueryFollowsCursorsAndPassesSortFieldsAndFilter) {
  for (int i = 1; i <= 5; ++i) {
    ASSERT_EQ(Run({"put", "d" + std::to_string(i), "{\"n\":" + std::to_string(i) + "}"}), 0);
  }
  ASSERT_EQ(Run({"query", R"({"n":{"gte":2}})", "--sort", "n:desc", "--sort", "a.b", "--fields",
                 "n,a.b", "--explain"}),
            0)
      << err();
  ASSERT_EQ(kv_.queries.size(), 1u);
  const auto& q = kv_.queries[0];
  EXPECT_EQ(q.filter_json, R"({"n":{"gte":2}})");
  EXPECT_EQ(q.sort, (std::vector<std::pair<std::string, bool>>{{"n", true}, {"a.b", false}}));
  EXPECT_EQ(q.projection, (std::vector<std::string>{"n", "a.b"}));
  EXPECT_TRUE(q.explain);
  EXPECT_NE(out().find("plan: {\"kind\":\"collection_scan\"}"), std::string::npos) << out();
  EXPECT_NE(out().find("(2 documents; more with --cursor d2, or use --all)"), std::string::npos)
      << out();

  kv_.queries.clear();
  ASSERT_EQ(Run({"query", "--all", "-o", "json"}), 0) << err();
  EXPECT_EQ(kv_.queries.size(), 3u);
  EXPECT_EQ(kv_.queries[2].cursor, "d4") << "later pages continue from the cursor";
  json doc = json::parse(out());
  ASSERT_EQ(doc["items"].size(), 5u);
  EXPECT_EQ(doc["items"][4]["value"], json::parse(R"({"n":5})"));
  EXPECT_TRUE(doc["cursor"].is_null());

  kv_.queries.clear();
  ASSERT_EQ(Run({"query", "--limit", "3"}), 0) << err();
  EXPECT_NE(out().find("(3 documents"), std::string::npos) << out();
  EXPECT_EQ(kv_.queries.back().limit, 1u) << "the last page asks only for what is missing";

  for (const std::vector<std::string>& bad : {std::vector<std::string>{"query", "--sort", ":desc"},
                                              {"query", "--fields", "a,,b"},
                                              {"query", "--limit", "0"},
                                              {"query", "--consistency", "snapshot"},
                                              {"query", "--consistency", "stale"}}) {
    EXPECT_EQ(Run(bad), 2) << bad[1];
  }
}

TEST_F(CommandsTest, AggregateBuildsTheSpecAndPrintsOneRowPerGroup) {
  kv_.groups = R"([{"key":{"city":"Oslo"},"values":{"n":2,"s":70.5}},
                   {"key":{},"values":{"n":1,"s":null}}])";
  ASSERT_EQ(Run({"aggregate", "--group-by", "city", "--agg", "n=count", "--agg", "s=sum:age",
                 "--filter", R"({"age":{"gt":1}})"}),
            0)
      << err();
  ASSERT_EQ(kv_.aggregations.size(), 1u);
  EXPECT_EQ(json::parse(kv_.aggregations[0].aggregates_json),
            json::parse(R"({"n":{"count":"*"},"s":{"sum":"age"}})"));
  EXPECT_EQ(kv_.aggregations[0].group_by_json, R"(["city"])");
  EXPECT_EQ(kv_.aggregations[0].filter_json, R"({"age":{"gt":1}})");
  EXPECT_NE(out().find("city"), std::string::npos) << out();
  EXPECT_NE(out().find("Oslo"), std::string::npos);
  EXPECT_NE(out().find("70.5"), std::string::npos);
  EXPECT_NE(out().find("(missing)"), std::string::npos);
  EXPECT_NE(out().find("(2 groups)"), std::string::npos);
  for (const std::vector<std::string>& bad :
       {std::vector<std::string>{"aggregate"},
        {"aggregate", "--agg", "n"},
        {"aggregate", "--agg", "=count"},
        {"aggregate", "--agg", "s=sum:"},
        {"aggregate", "--agg", "n=count", "--agg", "n=max:a"},
        {"aggregate", "--agg", "n=count", "--group-by", "a,"}}) {
    EXPECT_EQ(Run(bad), 2) << bad.back();
  }
}

TEST_F(CommandsTest, ImportLoadsNdjsonAndCsvReportsBadLinesAndResumes) {
  const std::string dir = ::testing::TempDir();
  const std::string nd = dir + "/cli_import.ndjson";
  {
    std::ofstream f(nd, std::ios::binary);
    f << "{\"_id\":\"a\",\"n\":1}\n"
         "not json\n"
         "{\"_id\":\"bad1\",\"n\":2}\n"
         "\n"
         "{\"_id\":\"b\",\"n\":3}\n"
         "{\"n\":4}\n"
         "{\"_id\":\"c\",\"n\":5}";  // no final line break
  }
  EXPECT_EQ(Run({"import", nd, "--batch", "2", "--ingest-id", "L1"}), 3)
      << "refused lines make the exit status 3: " << err();
  EXPECT_NE(out().find("7 lines, 3 written, 0 skipped, 3 failed"), std::string::npos) << out();
  EXPECT_NE(out().find("line 2: INVALID_ARGUMENT (NOT_JSON)"), std::string::npos) << out();
  EXPECT_NE(out().find("line 3: ABORTED (UNIQUE)"), std::string::npos) << out();
  EXPECT_NE(out().find("line 6: INVALID_ARGUMENT (NO_KEY)"), std::string::npos) << out();
  ASSERT_EQ(Run({"get", "c"}), 0);
  EXPECT_EQ(out(), "{\"_id\":\"c\",\"n\":5}\n");
  EXPECT_EQ(kv_.ingest.progress["L1"], 7u);

  ASSERT_EQ(Run({"import", nd, "--ingest-id", "L1", "-o", "json"}), 0) << err();
  json sum = json::parse(out());
  EXPECT_EQ(sum["skipped"], 4) << "the rerun skips every record that is in or was refused";
  EXPECT_EQ(sum["written"], 0);
  EXPECT_EQ(sum["failed"], 0);

  const std::string csv = dir + "/cli_import.csv";
  {
    std::ofstream f(csv, std::ios::binary);
    f << "id,name,age\r\nx1,\"Ada, A.\",36\r\nx2,Bo\r\nx3,Cy,\r\n";
  }
  ASSERT_EQ(Run({"collections", "create", "people"}), 0);
  EXPECT_EQ(Run({"import", csv, "-c", "people", "--key-field", "id"}), 3) << err();
  EXPECT_NE(
      out().find("3 written") == std::string::npos ? out().find("2 written") : std::string::npos,
      std::string::npos)
      << out();
  ASSERT_EQ(Run({"get", "x1", "-c", "people"}), 0);
  EXPECT_EQ(json::parse(out()), json::parse(R"({"id":"x1","name":"Ada, A.","age":36})"));
  ASSERT_EQ(Run({"get", "x3", "-c", "people"}), 0);
  EXPECT_EQ(json::parse(out()), json::parse(R"({"id":"x3","name":"Cy"})"));

  EXPECT_EQ(Run({"import", dir + "/missing.ndjson"}), 1);
  EXPECT_EQ(Run({"import", csv, "-c", "people"}), 3) << "no _id column";
  EXPECT_NE(err().find("no key column '_id'"), std::string::npos) << err();
  EXPECT_EQ(Run({"import", csv, "--format", "xml"}), 2);
}

TEST_F(CommandsTest, ALargeImportGoesOverSeveralStreamsAndSumsThem) {
  const std::string path = ::testing::TempDir() + "/cli_large.ndjson";
  {
    std::ofstream f(path, std::ios::binary);
    for (int i = 0; i < 100001; ++i) f << "{\"_id\":\"k" << i << "\"}\n";
    f << "oops\n";
  }
  EXPECT_EQ(Run({"import", path, "--batch", "5000", "-o", "json"}), 3) << err();
  json sum = json::parse(out());
  EXPECT_EQ(sum["written"], 100001);
  EXPECT_EQ(sum["failed"], 1);
  EXPECT_EQ(sum["lines_done"], 100002);
  ASSERT_EQ(sum["errors"].size(), 1u);
  EXPECT_EQ(sum["errors"][0]["line"], 100002);
  EXPECT_EQ(kv_.ingest_streams, 3) << "50,000 records per stream";

  // Large documents: a message stops at about 4 MiB, whatever --batch says.
  {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    for (int i = 0; i < 5; ++i) {
      f << "{\"_id\":\"big" << i << "\",\"pad\":\"" << std::string(1500000, 'x') << "\"}\n";
    }
  }
  kv_.ingest_messages.clear();
  EXPECT_EQ(Run({"import", path, "--batch", "100"}), 0) << err();
  EXPECT_EQ(kv_.ingest_messages, (std::vector<size_t>{2, 2, 1}));
}

TEST_F(CommandsTest, ExportWritesEveryDocumentWithItsKey) {
  ASSERT_EQ(Run({"put", "k1", R"({"z":1,"a":"x"})"}), 0);
  ASSERT_EQ(Run({"put", "k2", R"({"_id":"k2","b":[1,2]})"}), 0);
  ASSERT_EQ(Run({"put", "k3", "{}"}), 0);
  const std::string dir = ::testing::TempDir();
  ASSERT_EQ(Run({"export", dir + "/cli_export.ndjson"}), 0) << err();
  EXPECT_NE(out().find("exported 3 documents from default"), std::string::npos) << out();
  EXPECT_EQ(ReadFile(dir + "/cli_export.ndjson"),
            "{\"_id\":\"k1\",\"z\":1,\"a\":\"x\"}\n"
            "{\"_id\":\"k2\",\"b\":[1,2]}\n"
            "{\"_id\":\"k3\"}\n")
      << "the stored field order is kept";
  ASSERT_EQ(Run({"export", dir + "/cli_export.csv"}), 0) << err();
  EXPECT_EQ(ReadFile(dir + "/cli_export.csv"),
            "_id,z,a,b\n"
            "k1,1,\"x\",\n"
            "k2,,,\"[1,2]\"\n"
            "k3,,,\n");
  ASSERT_EQ(Run({"export", "-", "--format", "csv", "--fields", "a"}), 0) << err();
  EXPECT_EQ(out(), "_id,a\nk1,\"x\"\nk2,\nk3,\n");
  EXPECT_NE(err().find("exported 3 documents"), std::string::npos) << "the summary goes to stderr";

  ASSERT_EQ(Run({"put", "k4", R"({"_id":"other"})"}), 0);
  EXPECT_EQ(Run({"export", dir + "/cli_export2.ndjson"}), 3);
  EXPECT_NE(err().find("not its key"), std::string::npos) << err();
  ASSERT_EQ(Run({"put", "k4", "plain text"}), 0);
  EXPECT_EQ(Run({"export", "-"}), 3);
  EXPECT_NE(err().find("not a JSON document"), std::string::npos) << err();
}

}  // namespace
}  // namespace gojodb::cli
