// Three RaftNodes in one process, talking through real gRPC streams on loopback:
// replication, a member going away (its server too), and reconnection after restart.
#include "api/grpc/raft_transport.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "core/consensus/codec.h"
#include "core/replication/list_state_machine.h"
#include "tests/integration/process.h"

namespace gojodb::rpc {
namespace {

using consensus::LogIndex;
using consensus::NodeId;
using namespace std::chrono_literals;
using gojodb::testing::FreePort;

struct Member {
  std::unique_ptr<storage::Engine> engine;
  std::unique_ptr<replication::ListStateMachine> sm;
  std::unique_ptr<GrpcRaftTransport> transport;
  std::mutex mu;
  replication::RaftNode* node = nullptr;  // GUARDED_BY(mu): what the service delivers to
  std::unique_ptr<replication::RaftNode> owned;
  std::unique_ptr<RaftTransportService> service;
  std::unique_ptr<grpc::Server> server;
};

class RaftTransportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("gojodb-rafttransport-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    for (uint64_t id = 1; id <= 3; ++id) ports_[id] = FreePort();
    for (uint64_t id = 1; id <= 3; ++id) Start(id);
  }
  void TearDown() override {
    for (uint64_t id = 1; id <= 3; ++id) Stop(id);
    std::filesystem::remove_all(dir_);
  }
  void Start(uint64_t id) {
    auto& m = members_[id];
    m = std::make_unique<Member>();
    Member* raw = m.get();
    m->service = std::make_unique<RaftTransportService>([raw](consensus::Message msg) {
      std::lock_guard lock(raw->mu);
      if (raw->node) raw->node->Deliver(std::move(msg));
    });
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:" + std::to_string(ports_[id]),
                       grpc::InsecureServerCredentials());
    b.RegisterService(m->service.get());
    m->server = b.BuildAndStart();
    ASSERT_TRUE(m->server);
    std::map<uint64_t, std::string> peers;
    for (uint64_t p = 1; p <= 3; ++p) {
      if (p != id) peers[p] = "127.0.0.1:" + std::to_string(ports_[p]);
    }
    m->transport = std::make_unique<GrpcRaftTransport>(peers);
    m->transport->SetSnapshotReporter([raw](uint64_t, uint64_t to, bool ok) {
      std::lock_guard lock(raw->mu);
      if (raw->node) raw->node->ReportSnapshot(NodeId(to), ok);
    });
    storage::EngineOptions eo;
    eo.path = (dir_ / std::to_string(id)).string();
    std::filesystem::create_directories(eo.path);
    m->engine = std::move(storage::OpenEngine(eo)).value();
    m->sm = std::make_unique<replication::ListStateMachine>();
    replication::RaftNodeOptions o;
    o.id = NodeId(id);
    o.initial_voters = {NodeId(1), NodeId(2), NodeId(3)};
    o.tick_interval = 10ms;
    o.random_seed = id;
    o.snapshot_entries = snapshot_entries_;
    o.retain_entries = 2;
    auto n = replication::RaftNode::Start(o, m->engine.get(), m->sm.get(), m->transport.get());
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    m->owned = std::move(n).value();
    std::lock_guard lock(m->mu);
    m->node = m->owned.get();
  }
  void Stop(uint64_t id) {
    auto& m = members_[id];
    if (!m) return;
    {
      std::lock_guard lock(m->mu);
      m->node = nullptr;
    }
    m->server->Shutdown(std::chrono::system_clock::now() + 200ms);
    m->owned.reset();
    m->transport.reset();
    m->engine.reset();
    m.reset();
  }
  Status Propose(uint64_t id, const std::string& v) {
    Status s;
    for (int i = 0; i < 100; ++i) {
      s = members_[id]->owned->Propose(v, 2s);
      if (s.ok() ||
          (s.code() != StatusCode::kUnavailable && s.code() != StatusCode::kDeadlineExceeded))
        return s;
      std::this_thread::sleep_for(20ms);
    }
    return s;
  }
  bool Converged(std::vector<uint64_t> ids, std::vector<std::string> values) {
    for (int i = 0; i < 500; ++i) {
      auto ref = members_[ids[0]]->sm->Items();
      bool ok = true;
      for (auto id : ids) ok = ok && members_[id]->sm->Items() == ref;
      for (auto& v : values) ok = ok && std::find(ref.begin(), ref.end(), v) != ref.end();
      if (ok) return true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }

  uint64_t snapshot_entries_ = 0;
  std::filesystem::path dir_;
  std::map<uint64_t, int> ports_;
  std::map<uint64_t, std::unique_ptr<Member>> members_;
};

TEST_F(RaftTransportTest, ReplicatesOverGrpcAndReconnectsAfterARestart) {
  std::vector<std::string> values;
  for (int i = 0; i < 20; ++i) {
    values.push_back("v" + std::to_string(i));
    ASSERT_TRUE(Propose(1 + i % 3, values.back()).ok()) << i;
  }
  ASSERT_TRUE(Converged({1, 2, 3}, values));
  Stop(3);  // its server goes away: peers' streams break and retry
  for (int i = 20; i < 30; ++i) {
    values.push_back("v" + std::to_string(i));
    ASSERT_TRUE(Propose(1, values.back()).ok()) << i;
  }
  ASSERT_TRUE(Converged({1, 2}, values));
  Start(3);  // same port: peers reconnect, and it catches up from its durable log
  ASSERT_TRUE(Converged({1, 2, 3}, values));
  EXPECT_GT(members_[1]->transport->dropped() + members_[2]->transport->dropped(), 0u);
}

TEST_F(RaftTransportTest, ALaggingMemberCatchesUpFromAChunkedSnapshot) {
  for (uint64_t id = 1; id <= 3; ++id) Stop(id);
  snapshot_entries_ = 8;
  for (uint64_t id = 1; id <= 3; ++id) Start(id);
  Stop(3);
  std::filesystem::remove_all(dir_ / "3");
  // About 3.5 MiB of state: the snapshot takes several chunks.
  std::vector<std::string> values;
  for (int i = 0; i < 28; ++i) {
    values.push_back(std::to_string(i) + std::string(128 << 10, static_cast<char>('a' + i % 26)));
    ASSERT_TRUE(Propose(1, values.back()).ok()) << i;
  }
  ASSERT_TRUE(Converged({1, 2}, values));
  Start(3);  // empty: the leader's log is compacted, so only a snapshot can help
  ASSERT_TRUE(Converged({1, 2, 3}, values));
  EXPECT_GT(members_[1]->transport->snapshots_sent() + members_[2]->transport->snapshots_sent(),
            0u);
  // Its status is published after the entries apply: wait for it, briefly.
  uint64_t snapshot_index = 0;
  for (int i = 0; i < 200 && snapshot_index == 0; ++i) {
    snapshot_index = members_[3]->owned->GetStatus().snapshot_index.value();
    if (snapshot_index == 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_GT(snapshot_index, 0u);
}

TEST_F(RaftTransportTest, MalformedStreamsAreRefused) {
  auto stub = v1::RaftTransport::NewStub(grpc::CreateChannel(
      "127.0.0.1:" + std::to_string(ports_[1]), grpc::InsecureChannelCredentials()));
  // Sends one item on a fresh stream of `open`'s kind and returns the server's verdict.
  auto verdict = [](auto open, const auto& item) {
    grpc::ClientContext ctx;
    v1::RaftAck ack;
    auto w = open(&ctx, &ack);
    w->Write(item);
    w->WritesDone();
    return w->Finish().error_code();
  };
  auto send = [&](grpc::ClientContext* c, v1::RaftAck* a) { return stub->Send(c, a); };
  auto snapshot = [&](grpc::ClientContext* c, v1::RaftAck* a) { return stub->SendSnapshot(c, a); };
  auto message = [](consensus::MessageType type) {
    consensus::Message m;
    m.type = type;
    m.to = NodeId(1);
    m.from = NodeId(2);
    if (type == consensus::MessageType::kSnap) m.snapshot = consensus::Snapshot{};
    return consensus::EncodeMessage(m);
  };

  // A batch whose groups do not match its messages.
  v1::RaftMessages batch;
  batch.add_messages(message(consensus::MessageType::kHeartbeat));
  batch.add_groups(1);
  batch.add_groups(2);
  EXPECT_EQ(verdict(send, batch), grpc::StatusCode::INVALID_ARGUMENT);

  v1::SnapshotChunk no_header;
  no_header.set_data("no header");
  EXPECT_EQ(verdict(snapshot, no_header), grpc::StatusCode::INVALID_ARGUMENT);

  v1::SnapshotChunk garbage;
  garbage.set_header("\x01garbage");
  EXPECT_EQ(verdict(snapshot, garbage), grpc::StatusCode::INVALID_ARGUMENT);

  // A header and no last chunk: nothing is delivered.
  v1::SnapshotChunk partial;
  partial.set_header(message(consensus::MessageType::kSnap));
  partial.set_data("partial");
  EXPECT_EQ(verdict(snapshot, partial), grpc::StatusCode::CANCELLED);
}

// Several groups per node share one transport (one stream per peer) and one loop:
// every message carries its group, and each group commits its own entries only.
TEST(RaftTransportGroupsTest, GroupsShareStreamsAndStayApart) {
  constexpr uint64_t kGroups = 4;
  const auto dir =
      std::filesystem::temp_directory_path() / ("gojodb-raftgroups-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  struct Node {
    std::unique_ptr<storage::Engine> engine;
    std::unique_ptr<replication::RaftLoop> loop;
    std::unique_ptr<GrpcRaftTransport> transport;
    std::mutex mu;
    std::map<uint64_t, replication::RaftNode*> groups;  // GUARDED_BY(mu)
    std::vector<std::unique_ptr<replication::Transport>> group_transports;
    std::vector<std::unique_ptr<replication::ListStateMachine>> sms;
    std::vector<std::unique_ptr<replication::RaftNode>> owned;
    std::unique_ptr<RaftTransportService> service;
    std::unique_ptr<grpc::Server> server;
  };
  std::map<uint64_t, int> ports;
  for (uint64_t id = 1; id <= 3; ++id) ports[id] = FreePort();
  std::map<uint64_t, std::unique_ptr<Node>> nodes;
  for (uint64_t id = 1; id <= 3; ++id) {
    auto n = std::make_unique<Node>();
    Node* raw = n.get();
    n->service = std::make_unique<RaftTransportService>(
        RaftTransportService::GroupDeliver([raw](uint64_t group, consensus::Message m) {
          std::lock_guard lock(raw->mu);
          auto it = raw->groups.find(group);
          if (it != raw->groups.end()) it->second->Deliver(std::move(m));
        }));
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:" + std::to_string(ports[id]), grpc::InsecureServerCredentials());
    b.RegisterService(n->service.get());
    n->server = b.BuildAndStart();
    ASSERT_TRUE(n->server);
    std::map<uint64_t, std::string> peers;
    for (uint64_t p = 1; p <= 3; ++p) {
      if (p != id) peers[p] = "127.0.0.1:" + std::to_string(ports[p]);
    }
    n->transport = std::make_unique<GrpcRaftTransport>(peers);
    storage::EngineOptions eo;
    eo.path = (dir / std::to_string(id)).string();
    std::filesystem::create_directories(eo.path);
    n->engine = std::move(storage::OpenEngine(eo)).value();
    n->loop = std::make_unique<replication::RaftLoop>(n->engine.get(), 10ms);
    for (uint64_t g = 1; g <= kGroups; ++g) {
      n->sms.push_back(std::make_unique<replication::ListStateMachine>());
      n->group_transports.push_back(n->transport->ForGroup(g));
      replication::RaftNodeOptions o;
      o.id = NodeId(id);
      o.group = g;
      o.initial_voters = {NodeId(1), NodeId(2), NodeId(3)};
      o.random_seed = id * 10 + g;
      auto r = replication::RaftNode::Start(o, n->loop.get(), n->sms.back().get(),
                                            n->group_transports.back().get());
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      n->owned.push_back(std::move(r).value());
      std::lock_guard lock(n->mu);
      n->groups[g] = n->owned.back().get();
    }
    nodes[id] = std::move(n);
  }
  for (uint64_t g = 1; g <= kGroups; ++g) {
    for (int i = 0; i < 5; ++i) {
      Status s;
      for (int attempt = 0; attempt < 200; ++attempt) {
        s = nodes[1 + attempt % 3]->owned[g - 1]->Propose(
            "g" + std::to_string(g) + "-" + std::to_string(i), 2s);
        if (s.ok()) break;
        std::this_thread::sleep_for(20ms);
      }
      ASSERT_TRUE(s.ok()) << s.ToString();
    }
  }
  for (uint64_t g = 1; g <= kGroups; ++g) {
    bool same = false;
    for (int i = 0; i < 300 && !same; ++i) {
      auto ref = nodes[1]->sms[g - 1]->Items();
      same = ref.size() >= 5 && nodes[2]->sms[g - 1]->Items() == ref &&
             nodes[3]->sms[g - 1]->Items() == ref;
      if (!same) std::this_thread::sleep_for(10ms);
    }
    ASSERT_TRUE(same) << "group " << g;
    for (const auto& item : nodes[3]->sms[g - 1]->Items()) {
      EXPECT_EQ(item.rfind("g" + std::to_string(g) + "-", 0), 0u) << item;
    }
  }
  for (auto& [id, n] : nodes) {
    {
      std::lock_guard lock(n->mu);
      n->groups.clear();
    }
    n->server->Shutdown(std::chrono::system_clock::now() + 200ms);
    n->owned.clear();
    n->transport.reset();
    n->loop.reset();
    n->engine.reset();
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace gojodb::rpc
