// Many groups on one loop per node: three nodes (each its own RocksDB and RaftLoop)
// host eight groups each; concurrent proposals to every group commit and apply
// everywhere, the Readies of different groups share log writes, and a node restarts
// with all its groups from its one log.
#include "core/replication/raft_loop.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <thread>

#include "core/replication/list_state_machine.h"
#include "core/replication/local_transport.h"
#include "core/replication/raft_node.h"

namespace gojodb::replication {
namespace {

using consensus::NodeId;
using namespace std::chrono_literals;

constexpr int kGroups = 8;

class RaftLoopTest : public ::testing::Test {
 protected:
  struct Node {
    std::unique_ptr<storage::Engine> engine;
    std::unique_ptr<RaftLoop> loop;
    std::vector<std::unique_ptr<ListStateMachine>> sms;
    std::vector<std::unique_ptr<LocalTransport>> transports;
    std::vector<std::unique_ptr<RaftNode>> groups;
  };

  void SetUp() override {
    dir_ =
        std::filesystem::temp_directory_path() / ("gojodb-raftloop-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    for (uint64_t id = 1; id <= 3; ++id) StartNode(id);
  }
  void TearDown() override {
    for (uint64_t id = 1; id <= 3; ++id) StopNode(id);
    std::filesystem::remove_all(dir_);
  }
  void StartNode(uint64_t id) {
    Node& n = nodes_[id];
    storage::EngineOptions eo;
    eo.path = (dir_ / std::to_string(id)).string();
    std::filesystem::create_directories(eo.path);
    n.engine = std::move(storage::OpenEngine(eo)).value();
    n.loop = std::make_unique<RaftLoop>(n.engine.get(), 5ms);
    for (uint64_t g = 1; g <= kGroups; ++g) {
      n.sms.push_back(std::make_unique<ListStateMachine>());
      n.transports.push_back(std::make_unique<LocalTransport>(&net_, g));
      RaftNodeOptions o;
      o.id = NodeId(id);
      o.group = g;
      o.initial_voters = {NodeId(1), NodeId(2), NodeId(3)};
      o.random_seed = id * 100 + g;
      auto r = RaftNode::Start(o, n.loop.get(), n.sms.back().get(), n.transports.back().get());
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      n.groups.push_back(std::move(r).value());
      net_.Attach(NodeId(id), n.groups.back().get(), g);
    }
  }
  void StopNode(uint64_t id) {
    Node& n = nodes_[id];
    for (uint64_t g = 1; g <= kGroups; ++g) net_.Detach(NodeId(id), g);
    n.groups.clear();
    n.transports.clear();
    n.sms.clear();
    n.loop.reset();
    n.engine.reset();
  }
  Status ProposeTo(uint64_t group, const std::string& data) {
    Status s;
    for (int attempt = 0; attempt < 300; ++attempt) {
      s = nodes_[1 + attempt % 3].groups[group - 1]->Propose(data, 2s);
      if (s.ok() ||
          (s.code() != StatusCode::kUnavailable && s.code() != StatusCode::kDeadlineExceeded))
        return s;
      std::this_thread::sleep_for(10ms);
    }
    return s;
  }
  bool Converged(int per_group) {
    for (int i = 0; i < 500; ++i) {
      bool all = true;
      for (uint64_t g = 0; g < kGroups && all; ++g) {
        auto ref = nodes_[1].sms[g]->Items();
        all = ref.size() >= static_cast<size_t>(per_group);
        for (uint64_t id = 2; id <= 3 && all; ++id) all = nodes_[id].sms[g]->Items() == ref;
      }
      if (all) return true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }

  std::filesystem::path dir_;
  LocalNetwork net_;
  std::map<uint64_t, Node> nodes_;
};

TEST_F(RaftLoopTest, GroupsShareLogWritesAndRestartTogether) {
  constexpr int kPerGroup = 30;
  std::vector<std::thread> proposers;
  std::atomic<int> failures{0};
  for (uint64_t g = 1; g <= kGroups; ++g) {
    proposers.emplace_back([&, g] {
      for (int i = 0; i < kPerGroup; ++i) {
        if (!ProposeTo(g, "g" + std::to_string(g) + "-" + std::to_string(i)).ok()) ++failures;
      }
    });
  }
  for (auto& t : proposers) t.join();
  EXPECT_EQ(failures.load(), 0);
  ASSERT_TRUE(Converged(kPerGroup));
  // Each group applied only its own entries.
  for (uint64_t g = 1; g <= kGroups; ++g) {
    for (const auto& item : nodes_[2].sms[g - 1]->Items()) {
      EXPECT_EQ(item.rfind("g" + std::to_string(g) + "-", 0), 0u) << item;
    }
  }
  // Concurrent groups' Readies went to disk together: fewer writes than Readies.
  for (uint64_t id = 1; id <= 3; ++id) {
    auto st = nodes_[id].loop->stats();
    EXPECT_GT(st.readies, st.log_writes) << "node " << id;
    std::printf("node %llu: %llu group Readies persisted in %llu log writes (%llu synced)\n",
                static_cast<unsigned long long>(id), static_cast<unsigned long long>(st.readies),
                static_cast<unsigned long long>(st.log_writes),
                static_cast<unsigned long long>(st.synced_writes));
    EXPECT_GT(st.synced_writes, 0u);
  }

  // A restart loads every group from the node's one log (state machines are in memory
  // here, so they replay).
  StopNode(2);
  StartNode(2);
  ASSERT_TRUE(Converged(kPerGroup));
  ASSERT_TRUE(ProposeTo(3, "after-restart").ok());
  ASSERT_TRUE(Converged(kPerGroup));
  EXPECT_EQ(nodes_[2].sms[2]->Items().back(), "after-restart");
}

}  // namespace
}  // namespace gojodb::replication
