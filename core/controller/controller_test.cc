// Controller over a real RaftNode and RocksDB (one member, so the tests are quick and
// the clock is a ManualClock): the timestamp oracle across restarts and clock steps,
// registration and liveness, bootstrap placement and repair through heartbeats.
#include "core/controller/controller.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "core/replication/local_transport.h"

namespace gojodb::controller {
namespace {

using namespace std::chrono_literals;

class ControllerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("gojodb-controller-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    Start();
  }
  void TearDown() override {
    Stop();
    std::filesystem::remove_all(dir_);
  }
  void Start() {
    storage::EngineOptions eo;
    eo.path = dir_.string();
    engine_ = std::move(storage::OpenEngine(eo)).value();
    sm_ = std::move(ControllerStateMachine::Open(engine_.get())).value();
    transport_ = std::make_unique<replication::LocalTransport>(&net_);
    replication::RaftNodeOptions o;
    o.id = consensus::NodeId(1);
    o.initial_voters = {consensus::NodeId(1)};
    o.tick_interval = 2ms;
    o.snapshot_entries = 20;
    o.retain_entries = 5;
    node_ = std::move(replication::RaftNode::Start(o, engine_.get(), sm_.get(), transport_.get()))
                .value();
    ControllerOptions co;
    co.id = 1;
    co.grpc_addr = "c:1";
    co.placement_interval = 10ms;
    co.tso_window_ms = 100;
    controller_ = std::make_unique<Controller>(co, node_.get(), sm_.get(), &clock_);
    for (int i = 0; i < 500 && !controller_->IsLeader(); ++i) std::this_thread::sleep_for(5ms);
    ASSERT_TRUE(controller_->IsLeader());
  }
  void Stop() {
    controller_.reset();
    node_.reset();
    sm_.reset();
    engine_.reset();
  }
  // Retries while the member is still taking office.
  template <typename F>
  auto Retry(F f) {
    auto r = f();
    for (int i = 0; i < 200 && !r.ok() && r.status().code() == StatusCode::kUnavailable; ++i) {
      std::this_thread::sleep_for(10ms);
      r = f();
    }
    return r;
  }
  NodeRecord Node(uint64_t id, std::string zone) {
    NodeRecord n;
    n.id = id;
    n.grpc_addr = "s:" + std::to_string(id);
    n.labels["zone"] = std::move(zone);
    return n;
  }
  // Heartbeats as `node` until the answer carries commands (or a second passes).
  std::vector<ShardCommand> AwaitCommands(uint64_t node, const std::vector<ShardRecord>& reports) {
    for (int i = 0; i < 100; ++i) {
      auto cmds = controller_->Heartbeat(node, {}, reports);
      EXPECT_TRUE(cmds.ok()) << cmds.status().ToString();
      if (!cmds.ok() || !cmds->empty()) return cmds.ok() ? *cmds : std::vector<ShardCommand>{};
      std::this_thread::sleep_for(10ms);
    }
    return {};
  }
  // Waits until the state satisfies `pred`.
  template <typename P>
  bool WaitState(P pred) {
    for (int i = 0; i < 500; ++i) {
      if (pred(sm_->State())) return true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }

  std::filesystem::path dir_;
  ManualClock clock_{1'700'000'000'000};
  replication::LocalNetwork net_;
  std::unique_ptr<storage::Engine> engine_;
  std::unique_ptr<ControllerStateMachine> sm_;
  std::unique_ptr<replication::LocalTransport> transport_;
  std::unique_ptr<replication::RaftNode> node_;
  std::unique_ptr<Controller> controller_;
};

TEST_F(ControllerTest, TimestampsIncreaseAcrossBatchesClockStepsAndRestarts) {
  std::vector<uint64_t> all;
  auto take = [&](uint32_t count) {
    auto first = Retry([&] { return controller_->AllocateTimestamps(count); });
    ASSERT_TRUE(first.ok()) << first.status().ToString();
    for (uint32_t i = 0; i < count; ++i) all.push_back(*first + i);
  };
  for (int i = 0; i < 50; ++i) {
    take(1 + i % 7);
    clock_.Advance(i % 3 == 0 ? 7 : 0);  // also crosses the 100 ms window: extends the limit
  }
  // The wall clock steps back an hour: timestamps still increase.
  clock_.Set(clock_.NowMillis() - 3'600'000);
  for (int i = 0; i < 10; ++i) take(3);
  // A restart (the clock still an hour behind): the limit persisted through Raft keeps
  // every new timestamp above every old one.
  Stop();
  Start();
  for (int i = 0; i < 10; ++i) take(2);
  for (size_t i = 1; i < all.size(); ++i) ASSERT_LT(all[i - 1], all[i]) << i;
  EXPECT_GE(sm_->State().tso_limit_ms, all.back() >> 18);

  EXPECT_EQ(controller_->AllocateTimestamps(0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(controller_->AllocateTimestamps(1u << 20).status().code(),
            StatusCode::kInvalidArgument);
}

TEST_F(ControllerTest, RegistrationErrorsLeaveStateUnchanged) {
  ASSERT_TRUE(Retry([&] { return controller_->RegisterNode(Node(1, "a")); }).ok());
  const auto before = sm_->State();
  auto dup_addr = Node(2, "a");
  dup_addr.grpc_addr = "s:1";
  EXPECT_EQ(controller_->RegisterNode(dup_addr).status().code(), StatusCode::kAlreadyExists);
  auto moved = Node(1, "a");
  moved.grpc_addr = "elsewhere:1";
  EXPECT_EQ(controller_->RegisterNode(moved).status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(controller_->DecommissionNode(42).code(), StatusCode::kNotFound);
  EXPECT_EQ(controller_->Heartbeat(42, {}, {}).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(controller_->UpdateSettings(R"({"replication_factor":0})").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(controller_->RemoveController(1).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(controller_->RemoveController(7).code(), StatusCode::kNotFound);
  EXPECT_EQ(controller_->AddController(0, "x:1").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(controller_->AddController(1, "x:1").code(), StatusCode::kAlreadyExists);
  auto after = sm_->State();
  after.members = before.members;  // the member's own record may land meanwhile
  after.map_version = before.map_version;
  EXPECT_EQ(after, before);
}

TEST_F(ControllerTest, BootstrapsTheFirstShardThenRepairsAroundADeadNode) {
  ASSERT_TRUE(Retry([&] {
                return controller_->UpdateSettings(
                    R"({"node_suspect_timeout_ms":1000,"node_dead_timeout_ms":3000})");
              }).ok());
  // Two nodes are not enough for three replicas: no shard yet.
  ASSERT_TRUE(controller_->RegisterNode(Node(1, "a")).ok());
  ASSERT_TRUE(controller_->RegisterNode(Node(2, "b")).ok());
  std::this_thread::sleep_for(100ms);
  EXPECT_TRUE(sm_->State().shards.empty());
  ASSERT_TRUE(controller_->RegisterNode(Node(3, "c")).ok());
  ASSERT_TRUE(WaitState([](const ClusterState& s) { return s.shards.size() == 1; }));
  ShardRecord shard = sm_->State().shards.begin()->second;
  ASSERT_EQ(shard.replicas.size(), 3u);
  EXPECT_EQ(shard.start_key, "");
  EXPECT_EQ(shard.end_key, "");

  // Each replica's node is told to create it, once.
  for (uint64_t n = 1; n <= 3; ++n) {
    auto cmds = AwaitCommands(n, {});
    ASSERT_EQ(cmds.size(), 1u) << n;
    EXPECT_EQ(cmds[0].kind, ShardCommand::Kind::kCreate);
    EXPECT_EQ(cmds[0].shard.id, shard.id);
    EXPECT_TRUE(controller_->Heartbeat(n, {}, {})->empty());
  }
  // The nodes report the shard, led by node 1: the map learns the leader.
  shard.leader = 1;
  for (uint64_t n = 1; n <= 3; ++n) ASSERT_TRUE(controller_->Heartbeat(n, {}, {shard}).ok());
  ASSERT_TRUE(
      WaitState([](const ClusterState& s) { return s.shards.begin()->second.leader == 1; }));

  // A fourth node joins; node 3 stops heartbeating and is declared dead.
  ASSERT_TRUE(controller_->RegisterNode(Node(4, "c")).ok());
  for (int step = 0; step < 8; ++step) {
    clock_.Advance(500);
    for (uint64_t n : {1, 2, 4}) ASSERT_TRUE(controller_->Heartbeat(n, {}, {shard}).ok());
  }
  auto view = controller_->View();
  ASSERT_TRUE(view.ok());
  std::map<uint64_t, Liveness> live;
  for (const auto& n : view->nodes) live[n.record.id] = n.liveness;
  EXPECT_EQ(live[1], Liveness::kUp);
  EXPECT_EQ(live[3], Liveness::kDead);

  // The shard's leader is asked to add a replica on node 4 (the only node without one).
  auto got = AwaitCommands(1, {shard});
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].kind, ShardCommand::Kind::kAddReplica);
  EXPECT_EQ(got[0].node, 4u);
  EXPECT_EQ(got[0].reason, "repair");
  // Followers are not asked.
  EXPECT_TRUE(controller_->Heartbeat(2, {}, {shard})->empty());
  // A report the map refuses does not fail the heartbeat (the node is alive).
  ShardRecord malformed = shard;
  malformed.epoch.conf_ver += 5;
  malformed.replicas = {{99, false}};  // an unregistered node
  EXPECT_TRUE(controller_->Heartbeat(2, {}, {malformed}).ok());
  EXPECT_EQ(sm_->State().shards.at(shard.id).replicas.size(), 3u);

  // The leader carries it out and reports the new descriptor: the map takes it, and
  // the next round removes the dead replica.
  shard.replicas.push_back({4, false});
  shard.epoch.conf_ver++;
  ASSERT_TRUE(controller_->Heartbeat(1, {}, {shard}).ok());
  ASSERT_TRUE(WaitState(
      [](const ClusterState& s) { return s.shards.begin()->second.replicas.size() == 4; }));
  got = AwaitCommands(1, {shard});
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].kind, ShardCommand::Kind::kRemoveReplica);
  EXPECT_EQ(got[0].node, 3u);
}

TEST_F(ControllerTest, DecommissionedNodeIsDrainedThenRemoved) {
  ASSERT_TRUE(Retry([&] { return controller_->RegisterNode(Node(1, "a")); }).ok());
  ASSERT_TRUE(controller_->DecommissionNode(1).ok());
  // It hosts no replica, so it is removed at once.
  ASSERT_TRUE(
      WaitState([](const ClusterState& s) { return s.nodes.at(1).admin == AdminState::kRemoved; }));
  EXPECT_EQ(controller_->Heartbeat(1, {}, {}).status().code(), StatusCode::kFailedPrecondition);
}

// A dropped collection's rows are handed to the shards' leaders only once the GC safe
// point passes the drop's lease end, and the entry goes once reports cover its range.
TEST_F(ControllerTest, DroppedRowsAreHandedOutPastTheSafePointAndForgottenWhenDeleted) {
  ASSERT_TRUE(Retry([&] {
                return controller_->UpdateSettings(
                    R"({"replication_factor":1,"gc_ttl_seconds":1,"schema_lease_ms":100})");
              }).ok());
  ASSERT_TRUE(controller_->RegisterNode(Node(1, "a")).ok());
  ASSERT_TRUE(WaitState([](const ClusterState& s) { return s.shards.size() == 1; }));
  ShardRecord shard = sm_->State().shards.begin()->second;
  shard.leader = 1;
  ASSERT_TRUE(controller_->AllocateTimestamps(1).ok());
  auto c = controller_->CreateCollection("default", "c", "", {{"i", {"a"}, false}});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_TRUE(controller_->DropCollection("default", "c").ok());
  const ClusterState dropped = sm_->State();
  ASSERT_EQ(dropped.reclaim.size(), 2u);
  const uint64_t lease_end = dropped.reclaim.at(c->id).lease_end_ts;
  EXPECT_EQ(lease_end, (dropped.tso_limit_ms + 100) << 18);
  EXPECT_EQ(controller_->Gc()->reclaim_pending, 2u);

  auto beat = [&](const std::vector<GcResolvedReport>& resolved,
                  const std::vector<ReclaimedReport>& reclaimed) {
    GcPoints gc;
    EXPECT_TRUE(controller_->Heartbeat(1, {}, {shard}, resolved, reclaimed, &gc).ok());
    return gc;
  };
  EXPECT_TRUE(beat({}, {}).reclaim.empty()) << "the safe point is below the lease end";
  // The GC moves on (the clock passes the hold grace and the TTL; the shard reports its
  // fence resolved at the target): the safe point passes the lease end.
  for (int i = 0; i < 200 && sm_->State().gc_safe_point < lease_end; ++i) {
    clock_.Advance(1000);
    const uint64_t target = controller_->Gc()->target;
    if (target != 0) beat({{shard.id, shard.epoch.version, target}}, {});
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_GE(sm_->State().gc_safe_point, lease_end);
  auto ready = beat({}, {}).reclaim;
  ASSERT_EQ(ready.size(), 2u);
  EXPECT_EQ(ready[0].id, c->id);
  EXPECT_EQ(ready[1].id, c->indexes[0].id);

  // A report at another epoch counts for nothing; the right one ends the entry.
  beat({}, {{shard.id, shard.epoch.version + 1, c->id}});
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(sm_->State().reclaim.size(), 2u);
  beat({}, {{shard.id, shard.epoch.version, c->id}});
  ASSERT_TRUE(WaitState([&](const ClusterState& s) { return s.reclaim.size() == 1; }));
  EXPECT_EQ(sm_->State().reclaim.count(c->indexes[0].id), 1u);
  // A restart (a new term: the reports held in memory are gone) keeps the list; the
  // node's report, sent again, ends the entry once the new leader's grace has passed.
  Stop();
  Start();
  EXPECT_EQ(sm_->State().reclaim.size(), 1u);
  ready = beat({}, {}).reclaim;
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_EQ(ready[0].id, c->indexes[0].id);
  clock_.Advance(11000);  // past gc_hold_grace: the new leader's GC rounds run
  beat({}, {{shard.id, shard.epoch.version, c->indexes[0].id}});
  ASSERT_TRUE(WaitState([&](const ClusterState& s) { return s.reclaim.empty(); }));
  EXPECT_EQ(controller_->Gc()->reclaim_pending, 0u);
}

TEST_F(ControllerTest, CatalogAndStateSurviveRestartAndSnapshots) {
  auto c = Retry([&] { return controller_->CreateCollection("default", "users", "", {}); });
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_TRUE(controller_->CreateTenant("acme").ok());
  // Enough commands to take several snapshots and compact the log.
  for (int i = 0; i < 60; ++i) {
    ASSERT_TRUE(controller_->CreateCollection("acme", "c" + std::to_string(i), "", {}).ok());
  }
  EXPECT_GT(node_->GetStatus().snapshot_index.value(), 0u);
  const auto before = sm_->State();
  Stop();
  Start();
  auto after = sm_->State();
  EXPECT_EQ(after.collections, before.collections);
  EXPECT_EQ(after.tenants, before.tenants);
  EXPECT_EQ(controller_->CreateCollection("default", "users", "", {}).status().code(),
            StatusCode::kAlreadyExists);
}

}  // namespace
}  // namespace gojodb::controller
