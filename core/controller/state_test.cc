// The controller's replicated state: every command's effect and refusal, and that a
// refused command changes nothing.
#include "core/controller/state.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace gojodb::controller {
namespace {

NodeRecord Node(uint64_t id, std::string addr, std::string zone = "") {
  NodeRecord n;
  n.id = id;
  n.grpc_addr = std::move(addr);
  n.http_addr = "h" + n.grpc_addr;
  n.capacity_bytes = 1000;
  if (!zone.empty()) n.labels["zone"] = zone;
  return n;
}

class StateTest : public ::testing::Test {
 protected:
  // Applies `command`; on refusal checks that the state did not change.
  Status Run(const std::string& command, std::string* result = nullptr) {
    const ClusterState before = st_;
    std::string r;
    std::vector<std::string> touched;
    Status s = Apply(&st_, command, &r, &touched);
    if (!s.ok()) {
      EXPECT_EQ(st_, before) << "a refused command changed the state: " << command;
      EXPECT_TRUE(touched.empty());
    }
    if (result) *result = r;
    return s;
  }
  // Every record of the state, written and loaded one by one, gives the state back.
  void ExpectRecordsRoundTrip() {
    ClusterState loaded;
    for (const auto& key : RecordKeys(st_)) {
      auto v = RecordValue(st_, key);
      ASSERT_TRUE(v.has_value()) << key;
      ASSERT_TRUE(LoadRecord(&loaded, key, *v).ok()) << key;
    }
    EXPECT_EQ(loaded, st_);
  }
  ClusterState st_ = ClusterState::Initial();
};

TEST_F(StateTest, InitialStateHasTheDefaultTenantAndCollection) {
  ASSERT_NE(st_.FindTenant("default"), nullptr);
  EXPECT_EQ(st_.FindTenant("default")->id, kDefaultTenantId);
  EXPECT_EQ(st_.collections.at({kDefaultTenantId, "default"}).id, kDefaultCollectionId);
  EXPECT_TRUE(ValidateSettings(st_.settings).ok());
}

TEST_F(StateTest, NodeRegistrationRefusesDuplicatesAndIsIdempotent) {
  std::string r;
  ASSERT_TRUE(Run(cmd::RegisterNode(Node(1, "a:1", "z1")), &r).ok());
  EXPECT_EQ(r, R"({"id":1,"new":true})");
  const uint64_t v = st_.map_version;
  // The same node again (a restart): no change.
  ASSERT_TRUE(Run(cmd::RegisterNode(Node(1, "a:1", "z1")), &r).ok());
  EXPECT_EQ(r, R"({"id":1,"new":false})");
  EXPECT_EQ(st_.map_version, v);
  // New capacity: updated.
  auto bigger = Node(1, "a:1", "z1");
  bigger.capacity_bytes = 5000;
  ASSERT_TRUE(Run(cmd::RegisterNode(bigger)).ok());
  EXPECT_EQ(st_.nodes.at(1).capacity_bytes, 5000u);
  EXPECT_GT(st_.map_version, v);

  EXPECT_EQ(Run(cmd::RegisterNode(Node(1, "b:1"))).code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(Run(cmd::RegisterNode(Node(2, "a:1"))).code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(Run(cmd::RegisterNode(Node(0, "c:1"))).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Run(cmd::RegisterNode(Node(3, ""))).code(), StatusCode::kInvalidArgument);
}

TEST_F(StateTest, NodeAdminStateMachine) {
  ASSERT_TRUE(Run(cmd::RegisterNode(Node(1, "a:1"))).ok());
  EXPECT_EQ(Run(cmd::SetNodeAdmin(9, AdminState::kDecommissioning)).code(), StatusCode::kNotFound);
  // Removal needs a drain first.
  EXPECT_EQ(Run(cmd::SetNodeAdmin(1, AdminState::kRemoved)).code(),
            StatusCode::kFailedPrecondition);
  ASSERT_TRUE(Run(cmd::SetNodeAdmin(1, AdminState::kDecommissioning)).ok());
  // A restart of a decommissioning node keeps it decommissioning.
  ASSERT_TRUE(Run(cmd::RegisterNode(Node(1, "a:1"))).ok());
  EXPECT_EQ(st_.nodes.at(1).admin, AdminState::kDecommissioning);
  ASSERT_TRUE(Run(cmd::SetNodeAdmin(1, AdminState::kRemoved)).ok());
  EXPECT_EQ(Run(cmd::SetNodeAdmin(1, AdminState::kActive)).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(Run(cmd::RegisterNode(Node(1, "a:1"))).code(), StatusCode::kFailedPrecondition);
  // Its address is free again for a new node.
  EXPECT_TRUE(Run(cmd::RegisterNode(Node(2, "a:1"))).ok());
}

TEST_F(StateTest, ShardMapBootstrapsOnceAndAcceptsOnlyNewerEpochs) {
  for (uint64_t i = 1; i <= 4; ++i) {
    ASSERT_TRUE(Run(cmd::RegisterNode(Node(i, "n:" + std::to_string(i)))).ok());
  }
  ShardRecord s;
  s.id = 1;
  s.replicas = {{1, false}, {2, false}, {3, false}};
  ASSERT_TRUE(Run(cmd::BootstrapShards({s})).ok());
  EXPECT_EQ(st_.next_shard_id, 2u);
  EXPECT_EQ(Run(cmd::BootstrapShards({s})).code(), StatusCode::kFailedPrecondition);

  // Leader hint at the same epoch: accepted.
  ShardRecord led = s;
  led.leader = 2;
  ASSERT_TRUE(Run(cmd::UpdateShard(led)).ok());
  EXPECT_EQ(st_.shards.at(1).leader, 2u);
  // Replicas changed without a new epoch: refused.
  ShardRecord bad = led;
  bad.replicas.push_back({4, true});
  EXPECT_EQ(Run(cmd::UpdateShard(bad)).code(), StatusCode::kFailedPrecondition);
  // With a new conf_ver: accepted; the old descriptor is then stale.
  bad.epoch.conf_ver = 2;
  ASSERT_TRUE(Run(cmd::UpdateShard(bad)).ok());
  EXPECT_EQ(Run(cmd::UpdateShard(led)).code(), StatusCode::kFailedPrecondition);
  // A split's new shard is created.
  ShardRecord right;
  right.id = 7;
  right.start_key = "m";
  right.epoch.version = 2;
  right.replicas = {{1, false}};
  ASSERT_TRUE(Run(cmd::UpdateShard(right)).ok());
  EXPECT_EQ(st_.next_shard_id, 8u);

  // Invalid descriptors.
  ShardRecord unknown_node = right;
  unknown_node.id = 9;
  unknown_node.replicas = {{42, false}};
  EXPECT_EQ(Run(cmd::UpdateShard(unknown_node)).code(), StatusCode::kNotFound);
  ShardRecord twice = right;
  twice.id = 10;
  twice.replicas = {{1, false}, {1, true}};
  EXPECT_EQ(Run(cmd::UpdateShard(twice)).code(), StatusCode::kInvalidArgument);
  ShardRecord empty_range = right;
  empty_range.id = 11;
  empty_range.end_key = "a";
  EXPECT_EQ(Run(cmd::UpdateShard(empty_range)).code(), StatusCode::kInvalidArgument);
}

TEST_F(StateTest, ShardIdsAreNeverHandedOutTwice) {
  std::string r;
  const uint64_t next = st_.next_shard_id;
  ASSERT_TRUE(Run(cmd::AllocateShardIds(3), &r).ok());
  EXPECT_EQ(r, R"({"first":)" + std::to_string(next) + "}");
  ASSERT_TRUE(Run(cmd::AllocateShardIds(1), &r).ok());
  EXPECT_EQ(r, R"({"first":)" + std::to_string(next + 3) + "}");
  EXPECT_EQ(Run(cmd::AllocateShardIds(0)).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Run(cmd::AllocateShardIds(1001)).code(), StatusCode::kInvalidArgument);
  // A split's shard reported with an id the map has not seen moves the counter past it.
  ASSERT_TRUE(Run(cmd::RegisterNode(Node(1, "127.0.0.1:1"))).ok());
  ShardRecord s;
  s.id = next + 10;
  s.replicas = {{1, false}};
  Status update = Run(cmd::UpdateShard(s));
  ASSERT_TRUE(update.ok()) << update.ToString();
  ASSERT_TRUE(Run(cmd::AllocateShardIds(1), &r).ok());
  EXPECT_EQ(r, R"({"first":)" + std::to_string(next + 11) + "}");
}

TEST_F(StateTest, UpdateShardsAppliesEachReportOnItsOwn) {
  ASSERT_TRUE(Run(cmd::RegisterNode(Node(1, "127.0.0.1:1"))).ok());
  ShardRecord a;
  a.id = 7;
  a.replicas = {{1, false}};
  a.epoch = {3, 2};
  ShardRecord b = a;
  b.id = 8;
  ASSERT_TRUE(Run(cmd::UpdateShards({a, b})).ok());
  EXPECT_EQ(st_.shards.at(7).epoch, (Epoch{3, 2}));
  // One stale report does not stop a newer one in the same command.
  ShardRecord stale = a;
  stale.epoch = {1, 1};
  ShardRecord newer = b;
  newer.epoch = {4, 2};
  std::string r;
  ASSERT_TRUE(Run(cmd::UpdateShards({stale, newer}), &r).ok());
  EXPECT_EQ(r, R"({"applied":1})");
  EXPECT_EQ(st_.shards.at(7).epoch, (Epoch{3, 2}));
  EXPECT_EQ(st_.shards.at(8).epoch, (Epoch{4, 2}));
}

TEST_F(StateTest, TsoLimitNeverGoesBack) {
  std::string r;
  ASSERT_TRUE(Run(cmd::TsoLimit(1000), &r).ok());
  EXPECT_EQ(r, R"({"limit_ms":1000})");
  ASSERT_TRUE(Run(cmd::TsoLimit(500), &r).ok());
  EXPECT_EQ(st_.tso_limit_ms, 1000u);
  ASSERT_TRUE(Run(cmd::TsoLimit(2000)).ok());
  EXPECT_EQ(st_.tso_limit_ms, 2000u);
}

TEST_F(StateTest, CatalogCollectionsAndTenants) {
  std::string r;
  ASSERT_TRUE(
      Run(cmd::CreateCollection("default", "users", R"({"fields":{"age":{"type":"integer"}}})",
                                {{"by_age", {"age"}, false}, {"by_name", {"name"}, true}}, 77),
          &r)
          .ok());
  const auto& users = st_.collections.at({kDefaultTenantId, "users"});
  EXPECT_EQ(users.id, 2u);
  EXPECT_EQ(users.created_ms, 77u);
  ASSERT_EQ(users.indexes.size(), 2u);
  // Each index takes an id of its own from the collections' id space.
  EXPECT_EQ(users.indexes[0].id, 3u);
  EXPECT_EQ(users.indexes[1].id, 4u);
  EXPECT_EQ(Run(cmd::CreateCollection("default", "users", "", {}, 0)).code(),
            StatusCode::kAlreadyExists);
  EXPECT_EQ(Run(cmd::CreateCollection("nope", "x", "", {}, 0)).code(), StatusCode::kNotFound);
  EXPECT_EQ(Run(cmd::CreateCollection("default", "bad name", "", {}, 0)).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(Run(cmd::CreateCollection("default", "x", "{not json", {}, 0)).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(Run(cmd::CreateCollection("default", "x", R"({"type":"object"})", {}, 0)).code(),
            StatusCode::kInvalidArgument)
      << "not a schema of ours";
  EXPECT_EQ(Run(cmd::CreateCollection("default", "x", "", {{"i", {"a..b"}, false}}, 0)).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(
      Run(cmd::CreateCollection("default", "x", "",
                                {{"i", {"a", "b", "c", "d", "e", "f", "g", "h", "i"}, false}}, 0))
          .code(),
      StatusCode::kInvalidArgument);
  EXPECT_EQ(Run(cmd::CreateCollection("default", "x", "", {{"i", {}, false}}, 0)).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(
      Run(cmd::CreateCollection("default", "x", "", {{"i", {"a"}, false}, {"i", {"b"}, false}}, 0))
          .code(),
      StatusCode::kInvalidArgument);

  ASSERT_TRUE(Run(cmd::DropCollection("default", "users")).ok());
  EXPECT_EQ(Run(cmd::DropCollection("default", "users")).code(), StatusCode::kNotFound);
  // Ids are never reused.
  ASSERT_TRUE(Run(cmd::CreateCollection("default", "users", "", {}, 0)).ok());
  EXPECT_EQ(st_.collections.at({kDefaultTenantId, "users"}).id, 5u);

  ASSERT_TRUE(Run(cmd::CreateTenant("acme"), &r).ok());
  EXPECT_EQ(r, R"({"id":2,"name":"acme"})");
  EXPECT_EQ(Run(cmd::CreateTenant("acme")).code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(Run(cmd::CreateTenant("")).code(), StatusCode::kInvalidArgument);
  // The same collection name in another tenant is another collection.
  ASSERT_TRUE(Run(cmd::CreateCollection("acme", "users", "", {}, 0)).ok());
  EXPECT_NE(st_.collections.at({2, "users"}).id, st_.collections.at({1, "users"}).id);
}

TEST_F(StateTest, IndexesAreAddedBuiltDroppedAndRemoved) {
  ASSERT_TRUE(Run(cmd::UpdateSettings(R"({"schema_lease_ms":1500})")).ok());
  ASSERT_TRUE(Run(cmd::CreateCollection("default", "c", "", {{"first", {"a"}, false}}, 0)).ok());
  auto col = [&] { return st_.collections.at({kDefaultTenantId, "c"}); };
  EXPECT_EQ(col().schema_lease_ms, 1500u) << "the lease is fixed when the collection is made";
  EXPECT_EQ(col().indexes[0].state, IndexState::kPublic);
  const uint64_t v0 = col().schema_version;

  std::string r;
  ASSERT_TRUE(Run(cmd::AddIndex("default", "c", {"by_b", {"b.c"}, true}), &r).ok());
  ASSERT_EQ(col().indexes.size(), 2u);
  IndexDef d = col().indexes[1];
  EXPECT_EQ(d.state, IndexState::kDeleteOnly) << "writers delete entries before any adds one";
  EXPECT_EQ(d.id, 4u) << "a new id from the collections' space";
  EXPECT_GT(col().schema_version, v0);
  EXPECT_NE(r.find("\"delete_only\""), std::string::npos) << r;
  // The same definition again answers it as it is; another under the name is refused.
  ASSERT_TRUE(Run(cmd::AddIndex("default", "c", {"by_b", {"b.c"}, true})).ok());
  EXPECT_EQ(col().indexes.size(), 2u);
  EXPECT_EQ(Run(cmd::AddIndex("default", "c", {"by_b", {"b"}, true})).code(),
            StatusCode::kAlreadyExists);
  EXPECT_EQ(Run(cmd::AddIndex("default", "c", {"bad name", {"b"}, false})).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(Run(cmd::AddIndex("default", "c", {"x", {"a..b"}, false})).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(Run(cmd::AddIndex("default", "nope", {"x", {"a"}, false})).code(),
            StatusCode::kNotFound);

  // delete_only -> building only.
  IndexDef skip = d;
  skip.state = IndexState::kPublic;
  EXPECT_EQ(Run(cmd::UpdateIndex("default", "c", skip)).code(), StatusCode::kFailedPrecondition);
  d.state = IndexState::kBuilding;
  ASSERT_TRUE(Run(cmd::UpdateIndex("default", "c", d)).ok());
  EXPECT_EQ(col().indexes[1].state, IndexState::kBuilding);
  // Progress never goes back; a stale builder (another id) is refused.
  IndexDef p = d;
  p.build_resume = std::string("k\x00\xff", 3);
  ASSERT_TRUE(Run(cmd::UpdateIndex("default", "c", p)).ok());
  EXPECT_EQ(col().indexes[1].build_resume, p.build_resume);
  IndexDef back = d;
  back.build_resume = "a";
  ASSERT_TRUE(Run(cmd::UpdateIndex("default", "c", back)).ok());
  EXPECT_EQ(col().indexes[1].build_resume, p.build_resume);
  IndexDef other = d;
  other.id = 99;
  EXPECT_EQ(Run(cmd::UpdateIndex("default", "c", other)).code(), StatusCode::kNotFound);
  // Only a building index becomes public or failed; a removal needs dropping or failed.
  EXPECT_EQ(Run(cmd::RemoveIndex("default", "c", "by_b", d.id)).code(),
            StatusCode::kFailedPrecondition);
  IndexDef pub = d;
  pub.state = IndexState::kPublic;
  pub.usable_from_ts = 777;
  ASSERT_TRUE(Run(cmd::UpdateIndex("default", "c", pub)).ok());
  EXPECT_EQ(col().indexes[1].state, IndexState::kPublic);
  EXPECT_EQ(col().indexes[1].usable_from_ts, 777u);
  EXPECT_TRUE(col().indexes[1].build_resume.empty());
  IndexDef fail = d;
  fail.state = IndexState::kFailed;
  EXPECT_EQ(Run(cmd::UpdateIndex("default", "c", fail)).code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE(Run(cmd::UpdateIndex("default", "c", pub)).ok()) << "a retry";

  // Records and snapshots keep every field.
  ExpectRecordsRoundTrip();

  IndexDef drop = d;
  drop.state = IndexState::kDropping;
  ASSERT_TRUE(Run(cmd::UpdateIndex("default", "c", drop)).ok());
  ASSERT_TRUE(Run(cmd::RemoveIndex("default", "c", "by_b", d.id)).ok());
  EXPECT_EQ(col().indexes.size(), 1u);
  ASSERT_TRUE(Run(cmd::RemoveIndex("default", "c", "by_b", d.id)).ok()) << "a retry";
  // A new index of the same name gets a new id: the old one's entries stay unreachable.
  ASSERT_TRUE(Run(cmd::AddIndex("default", "c", {"by_b", {"b"}, false})).ok());
  EXPECT_EQ(col().indexes[1].id, 5u);
  // A failed build is removed at once.
  IndexDef failed = col().indexes[1];
  failed.state = IndexState::kBuilding;
  ASSERT_TRUE(Run(cmd::UpdateIndex("default", "c", failed)).ok());
  failed.state = IndexState::kFailed;
  failed.error = "documents 'x' and 'y' share a value";
  ASSERT_TRUE(Run(cmd::UpdateIndex("default", "c", failed)).ok());
  EXPECT_EQ(col().indexes[1].error, failed.error);
  EXPECT_EQ(Run(cmd::AddIndex("default", "c", {"by_b", {"b"}, false})).code(),
            StatusCode::kAlreadyExists)
      << "a failed index keeps its name until it is dropped";
  Status removed = Run(cmd::RemoveIndex("default", "c", "by_b", failed.id));
  ASSERT_TRUE(removed.ok()) << removed.ToString();
  EXPECT_EQ(col().indexes.size(), 1u);
}

// A dropped collection's id, its indexes' ids and a removed index's id wait in the
// reclaim list with the lease end of the drop: every timestamp issued so far is below
// the TSO's limit, and a router plans with the record for one lease after it read it.
TEST_F(StateTest, DroppedIdsWaitInTheReclaimListUntilDone) {
  ASSERT_TRUE(Run(cmd::UpdateSettings(R"({"schema_lease_ms":1500})")).ok());
  ASSERT_TRUE(Run(cmd::TsoLimit(1000)).ok());
  ASSERT_TRUE(Run(cmd::CreateCollection("default", "c", "", {{"i", {"a"}, false}}, 0)).ok());
  ASSERT_TRUE(Run(cmd::AddIndex("default", "c", {"j", {"b"}, false})).ok());
  const CollectionRecord col = st_.collections.at({kDefaultTenantId, "c"});
  ASSERT_EQ(col.indexes.size(), 2u);
  const uint32_t c_id = col.id, i_id = col.indexes[0].id, j_id = col.indexes[1].id;
  EXPECT_TRUE(st_.reclaim.empty());

  auto apply = [&](const std::string& command, std::vector<std::string>* touched) {
    std::string r;
    touched->clear();
    return Apply(&st_, command, &r, touched);
  };
  auto has = [](const std::vector<std::string>& keys, const std::string& key) {
    return std::find(keys.begin(), keys.end(), key) != keys.end();
  };
  std::vector<std::string> touched;
  IndexDef j = col.indexes[1];
  j.state = IndexState::kDropping;
  ASSERT_TRUE(Run(cmd::UpdateIndex("default", "c", j)).ok());
  EXPECT_TRUE(st_.reclaim.empty()) << "a dropping index is still written";
  ASSERT_TRUE(apply(cmd::RemoveIndex("default", "c", "j", j_id), &touched).ok());
  ASSERT_EQ(st_.reclaim.size(), 1u);
  EXPECT_EQ(st_.reclaim.at(j_id), (ReclaimEntry{kDefaultTenantId, j_id, (1000ull + 1500) << 18}));
  EXPECT_TRUE(has(touched, "d/" + std::to_string(j_id))) << "persisted";
  ASSERT_TRUE(apply(cmd::RemoveIndex("default", "c", "j", j_id), &touched).ok());
  EXPECT_EQ(st_.reclaim.size(), 1u) << "a retry adds nothing";

  // The collection goes with its remaining index; the lease end follows the TSO's limit.
  ASSERT_TRUE(Run(cmd::TsoLimit(4000)).ok());
  ASSERT_TRUE(apply(cmd::DropCollection("default", "c"), &touched).ok());
  ASSERT_EQ(st_.reclaim.size(), 3u);
  EXPECT_EQ(st_.reclaim.at(c_id), (ReclaimEntry{kDefaultTenantId, c_id, (4000ull + 1500) << 18}));
  EXPECT_EQ(st_.reclaim.at(i_id), (ReclaimEntry{kDefaultTenantId, i_id, (4000ull + 1500) << 18}));
  EXPECT_TRUE(has(touched, "d/" + std::to_string(c_id)));
  EXPECT_TRUE(has(touched, "d/" + std::to_string(i_id)));
  // Another tenant's drop names its tenant.
  ASSERT_TRUE(Run(cmd::CreateTenant("acme")).ok());
  ASSERT_TRUE(Run(cmd::CreateCollection("acme", "c", "", {}, 0)).ok());
  const uint32_t acme_c = st_.collections.at({2, "c"}).id;
  ASSERT_TRUE(Run(cmd::DropCollection("acme", "c")).ok());
  EXPECT_EQ(st_.reclaim.at(acme_c).tenant_id, 2u);
  ExpectRecordsRoundTrip();
  auto decoded = DecodeState(EncodeState(st_));
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->reclaim, st_.reclaim);

  // Done: the entry and its record go; again, nothing changes.
  ASSERT_TRUE(apply(cmd::ReclaimDone(i_id), &touched).ok());
  EXPECT_EQ(st_.reclaim.count(i_id), 0u);
  EXPECT_TRUE(has(touched, "d/" + std::to_string(i_id)));
  EXPECT_FALSE(RecordValue(st_, "d/" + std::to_string(i_id)).has_value());
  const ClusterState before = st_;
  ASSERT_TRUE(Run(cmd::ReclaimDone(i_id)).ok());
  EXPECT_EQ(st_, before);
  EXPECT_EQ(Run(R"({"op":"reclaim_done","id":-1})").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Run(R"({"op":"reclaim_done","id":4294967296})").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Run(R"({"op":"reclaim_done"})").code(), StatusCode::kInvalidArgument);
  // A malformed record is refused at load.
  ClusterState loaded;
  EXPECT_EQ(LoadRecord(&loaded, "d/9", R"({"tenant_id":1,"id":9})").code(), StatusCode::kDataLoss);
}

TEST_F(StateTest, SettingsAreValidatedAsAWhole) {
  struct Case {
    std::string patch;
    StatusCode code;
  };
  const std::vector<Case> cases = {
      {R"({"replication_factor":5})", StatusCode::kOk},
      {R"({"replication_factor":0})", StatusCode::kInvalidArgument},
      {R"({"replication_factor":8})", StatusCode::kInvalidArgument},
      {R"({"replication_factor":-1})", StatusCode::kInvalidArgument},
      {R"({"replication_factor":"3"})", StatusCode::kInvalidArgument},
      {R"({"shard_split_bytes":100})", StatusCode::kInvalidArgument},
      {R"({"shard_split_bytes":4096})", StatusCode::kOk},
      {R"({"node_suspect_timeout_ms":1000,"node_dead_timeout_ms":1000})",
       StatusCode::kInvalidArgument},
      {R"({"node_suspect_timeout_ms":1000,"node_dead_timeout_ms":3000})", StatusCode::kOk},
      {R"({"gc_ttl_seconds":0})", StatusCode::kInvalidArgument},
      {R"({"max_ops_per_round":65})", StatusCode::kInvalidArgument},
      {R"({"colour":"blue"})", StatusCode::kInvalidArgument},
      {R"([1,2])", StatusCode::kInvalidArgument},
      {R"(not json)", StatusCode::kInvalidArgument},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(Run(cmd::UpdateSettings(c.patch)).code(), c.code) << c.patch;
  }
  EXPECT_EQ(st_.settings.replication_factor, 5u);
  EXPECT_EQ(st_.settings.shard_split_bytes, 4096u);
  EXPECT_EQ(st_.settings.node_dead_timeout_ms, 3000u);
}

TEST_F(StateTest, MembersRefuseSharedAddresses) {
  ASSERT_TRUE(Run(cmd::SetMember({1, "c:1", "h:1"})).ok());
  ASSERT_TRUE(Run(cmd::SetMember({2, "c:2", "h:2"})).ok());
  EXPECT_EQ(Run(cmd::SetMember({3, "c:1", ""})).code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(Run(cmd::RemoveMember(9)).code(), StatusCode::kNotFound);
  ASSERT_TRUE(Run(cmd::RemoveMember(2)).ok());
  EXPECT_EQ(st_.members.size(), 1u);
}

TEST_F(StateTest, MalformedCommandsAreRefusedNotFatal) {
  for (const std::string c :
       {"", "null", "[]", "{}", R"({"op":"nope"})", R"({"op":"register_node"})",
        R"({"op":"register_node","node":{"id":"x"}})", R"({"op":"tso_limit","limit_ms":-5})",
        R"({"op":"update_shard","shard":{"id":1,"replicas":[],"start_key_b64":"!!"}})",
        R"({"op":"set_node_admin","id":1,"admin":"sleepy"})",
        // Optional numbers are as strict as required ones: not too large for 64 bits (a
        // float out of range was undefined behaviour to convert), not negative, not
        // fractional.
        R"({"op":"update_shard","shard":{"id":1,"replicas":[],"leader":2.2e108}})",
        R"({"op":"update_shard","shard":{"id":1,"replicas":[],"conf_ver":-1}})",
        R"({"op":"update_shard","shard":{"id":1,"replicas":[],"version":1.5}})",
        R"({"op":"register_node","node":{"id":4,"grpc_addr":"n:4","capacity_bytes":1e30}})"}) {
    Status s = Run(c);
    EXPECT_FALSE(s.ok()) << c;
  }
}

TEST_F(StateTest, RecordsAndSnapshotsRoundTrip) {
  ASSERT_TRUE(Run(cmd::SetMember({1, "c:1", "h:1"})).ok());
  for (uint64_t i = 1; i <= 3; ++i) {
    ASSERT_TRUE(Run(cmd::RegisterNode(Node(i, "n:" + std::to_string(i), "z"))).ok());
  }
  ShardRecord s;
  s.id = 1;
  s.start_key = std::string("\x00\xff", 2);
  s.end_key = "zz";
  s.replicas = {{1, false}, {2, true}};
  ASSERT_TRUE(Run(cmd::BootstrapShards({s})).ok());
  ASSERT_TRUE(Run(cmd::CreateCollection("default", "c", "", {{"i", {"a", "b"}, true}}, 5)).ok());
  ASSERT_TRUE(Run(cmd::TsoLimit(123)).ok());
  ASSERT_TRUE(Run(cmd::UpdateSettings(R"({"replication_factor":1})")).ok());

  ExpectRecordsRoundTrip();
  auto decoded = DecodeState(EncodeState(st_));
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(*decoded, st_);
  EXPECT_FALSE(DecodeState("{\"s/1\":{}}").ok());
  EXPECT_FALSE(DecodeState("[").ok());
}

TEST_F(StateTest, OutcomesRoundTrip) {
  std::string r;
  EXPECT_TRUE(DecodeOutcome(EncodeOutcome(Status::OK(), R"({"a":1})"), &r).ok());
  EXPECT_EQ(r, R"({"a":1})");
  Status s = DecodeOutcome(EncodeOutcome(Status::AlreadyExists("dup"), "{}"), &r);
  EXPECT_EQ(s.code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(s.message(), "dup");
}

}  // namespace
}  // namespace gojodb::controller
