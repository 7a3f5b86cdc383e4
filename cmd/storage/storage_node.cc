#include "cmd/storage/storage_node.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <set>
#include <thread>

#include "api/gateway/cluster_kv.h"
#include "api/grpc/raft_transport.h"
#include "api/grpc/shard_convert.h"
#include "api/grpc/shard_service.h"
#include "cmd/storage/controller_link.h"

namespace gojodb::storage_node {

using namespace std::chrono_literals;

namespace {}  // namespace

class GroupTransportsAdapter final : public sharding::GroupTransports {
 public:
  explicit GroupTransportsAdapter(rpc::GrpcRaftTransport* t) : t_(t) {}
  std::unique_ptr<replication::Transport> ForGroup(uint64_t group) override {
    return t_->ForGroup(group);
  }

 private:
  rpc::GrpcRaftTransport* t_;
};

// Registration, heartbeats, the controller's commands, and peers' addresses.
namespace {
std::string Json(const std::map<std::string, uint64_t>& m) {
  std::string out = "{";
  for (const auto& [k, v] : m) {
    if (out.size() > 1) out += ",";
    out += "\"" + k + "\":" + std::to_string(v);
  }
  return out + "}";
}
}  // namespace

class NodeAgent {
 public:
  NodeAgent(uint64_t id, v1::NodeDescriptor self, ControllerLink* link, sharding::Store* store,
            rpc::GrpcRaftTransport* transport, std::chrono::milliseconds interval,
            std::string data_dir, std::map<uint64_t, std::string> peer_addrs,
            std::vector<std::string> controllers)
      : controllers_(std::move(controllers)),
        id_(id),
        self_(std::move(self)),
        link_(link),
        store_(store),
        transport_(transport),
        interval_(interval),
        data_dir_(std::move(data_dir)),
        peer_addrs_(std::move(peer_addrs)) {
    for (const auto& [node, addr] : peer_addrs_) transport_->SetPeer(node, addr);
  }

  void Start() {
    thread_ = std::thread([this] { Run(); });
    map_thread_ = std::thread([this] { WatchMap(); });
    gc_thread_ = std::thread([this] { CollectGarbage(); });
  }
  void Stop() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    if (map_thread_.joinable()) map_thread_.join();
    if (gc_thread_.joinable()) gc_thread_.join();
    resolver_.reset();
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return running_commands_ == 0; });
  }
  bool registered() const { return registered_.load(); }
  uint64_t heartbeats() const { return heartbeats_.load(); }

 private:
  bool Sleep(std::chrono::milliseconds d) {
    std::unique_lock lock(mu_);
    return !cv_.wait_for(lock, d, [&] { return stopping_; });
  }

  void Run() {
    v1::RegisterNodeRequest reg;
    *reg.mutable_node() = self_;
    while (!registered_) {
      auto r = link_->RegisterNode(reg);
      if (r.ok()) {
        registered_ = true;
        spdlog::info("registered with the controller as node {}", id_);
        break;
      }
      spdlog::warn("registration failed: {}", r.status().ToString());
      // Refusals (a taken id or address, a removed node) will not change by retrying
      // quickly; unavailability will.
      if (!Sleep(r.status().code() == StatusCode::kUnavailable ? 200ms : 2s)) return;
    }
    while (Sleep(interval_)) Beat();
  }

  void Beat() {
    v1::HeartbeatRequest req;
    req.set_node_id(id_);
    const auto stats = store_->GetStats();
    auto* st = req.mutable_stats();
    std::error_code ec;
    auto space = std::filesystem::space(data_dir_, ec);
    st->set_capacity_bytes(self_.capacity_bytes() != 0 ? self_.capacity_bytes()
                           : ec                        ? 0
                                                       : space.capacity);
    st->set_used_bytes(ec ? 0 : space.capacity - space.available);
    st->set_shard_count(stats.shards);
    st->set_leader_count(stats.leaders);
    for (const auto& d : store_->Describe()) rpc::ToProto(d, req.add_shards());
    for (const auto& g : store_->ResolvedGcFences()) {
      auto* p = req.add_gc_resolved();
      p->set_shard(g.shard);
      p->set_version(g.version);
      p->set_fence(g.fence);
    }
    for (const auto& x : store_->ReclaimedRows()) {
      auto* p = req.add_reclaimed();
      p->set_shard(x.shard);
      p->set_version(x.version);
      p->set_id(x.id);
    }
    auto r = link_->Heartbeat(req);
    if (!r.ok()) {
      spdlog::warn("heartbeat failed: {}", r.status().ToString());
      if (r.status().code() == StatusCode::kNotFound) registered_ = false;
      return;
    }
    heartbeats_++;
    store_->SetGcSafePoint(r->gc_safe_point());
    {
      std::vector<sharding::Store::ReclaimRange> reclaim;
      for (const auto& x : r->reclaim()) reclaim.push_back({x.tenant(), x.id()});
      std::lock_guard lock(mu_);
      reclaim_ = std::move(reclaim);
    }
    if (r->gc_target() > gc_target_.load()) {
      gc_target_ = r->gc_target();
      cv_.notify_all();
    }
    for (const auto& c : r->commands()) Execute(c);
    // The split threshold is a cluster setting; follow it.
    if (heartbeats_ % 4 == 1) {
      if (auto settings = link_->GetSettings(); settings.ok()) {
        store_->SetSplitBytes(settings->shard_split_bytes());
      }
    }
  }

  // Commands run on their own threads: adding a replica waits for it to catch up.
  void Execute(const v1::ShardCommand& c) {
    const uint64_t shard = c.shard().id();
    {
      std::lock_guard lock(mu_);
      if (stopping_ || !busy_.insert(shard).second) return;  // one command per shard at once
      running_commands_++;
    }
    std::thread([this, c, shard] {
      Status s;
      const auto d = rpc::FromProto(c.shard());
      if (c.kind() == "create") {
        s = store_->CreateReplica(d);
      } else if (c.kind() == "add_replica") {
        s = store_->AddReplica(shard, c.node(), 30s);
      } else if (c.kind() == "remove_replica") {
        s = store_->RemoveReplica(shard, c.node(), 10s);
      } else if (c.kind() == "transfer_leader") {
        s = store_->TransferLeader(shard, c.node());
      } else {
        s = Status::InvalidArgument("unknown command '" + c.kind() + "'");
      }
      if (s.ok()) {
        spdlog::info("shard {}: {} node {} done ({})", shard, c.kind(), c.node(), c.reason());
      } else {
        spdlog::warn("shard {}: {} node {} failed: {}", shard, c.kind(), c.node(), s.ToString());
      }
      std::lock_guard lock(mu_);
      busy_.erase(shard);
      running_commands_--;
      cv_.notify_all();
    }).detach();
  }

  // The GC's work on the shards this node leads (docs/architecture/transactions.md,
  // "Garbage collection"): raise their fences to the controller's target, then resolve
  // the locks left below the fences through their primaries (a router of our own).
  void CollectGarbage() {
    while (Sleep(interval_)) {
      const uint64_t target = gc_target_.load();
      if (target == 0) continue;
      store_->AdvanceGcFence(target, std::chrono::steady_clock::now() + interval_ * 4);
      std::vector<sharding::Store::ReclaimRange> reclaim;
      {
        std::lock_guard lock(mu_);
        reclaim = reclaim_;
      }
      store_->ReclaimRows(reclaim, std::chrono::steady_clock::now() + interval_ * 4);
      for (const auto& d : store_->Describe()) {
        if (d.leader != id_) continue;
        auto locks = store_->LocksBelowFence(d.id, 64);
        if (!locks.ok() || locks->empty()) continue;
        if (!resolver_) {
          gateway::ClusterKvOptions o;
          o.controllers = controllers_;
          o.request_timeout = std::chrono::milliseconds(5000);
          auto kv = gateway::ClusterKv::Start(std::move(o));
          if (!kv.ok()) {
            spdlog::warn("GC: no router to resolve locks with: {}", kv.status().ToString());
            break;
          }
          resolver_ = std::move(*kv);
        }
        for (const auto& l : *locks) {
          if (Status s = resolver_->ResolveAbandonedLock(l); !s.ok()) {
            spdlog::info("GC: shard {}: lock of transaction {} not resolved yet: {}", d.id,
                         l.lock.start_ts, s.ToString());
          }
          std::lock_guard lock(mu_);
          if (stopping_) return;
        }
      }
    }
  }

  // Follows the controller's map: peers' addresses for the transport, and replicas the
  // map says this node no longer holds (a removal this replica did not apply itself).
  void WatchMap() {
    uint64_t known = 0;
    while (true) {
      {
        std::lock_guard lock(mu_);
        if (stopping_) return;
      }
      auto m = link_->GetShardMap(known, 2000);
      if (!m.ok()) {
        if (!Sleep(500ms)) return;
        continue;
      }
      known = m->version();
      for (const auto& n : m->nodes()) {
        if (n.id() == id_ || n.grpc_addr().empty() || peer_addrs_.count(n.id())) continue;
        transport_->SetPeer(n.id(), n.grpc_addr());
      }
      for (const auto& sp : m->shards()) {
        const auto d = rpc::FromProto(sp);
        auto local = store_->DescriptorOf(d.id);
        if (!local.ok() || !sharding::Initialized(*local)) continue;
        const bool member = std::any_of(d.replicas.begin(), d.replicas.end(),
                                        [&](const auto& r) { return r.node == id_; });
        if (!member && d.epoch.conf_ver > local->epoch.conf_ver) {
          Status s = store_->DestroyReplica(d.id);
          spdlog::info("shard {}: removed from this node; replica dropped: {}", d.id, s.ToString());
        }
      }
    }
  }

  const std::vector<std::string> controllers_;
  const uint64_t id_;
  const v1::NodeDescriptor self_;
  ControllerLink* const link_;
  sharding::Store* const store_;
  rpc::GrpcRaftTransport* const transport_;
  const std::chrono::milliseconds interval_;
  const std::string data_dir_;
  const std::map<uint64_t, std::string> peer_addrs_;  // --peer-addrs: these win
  std::atomic<bool> registered_{false};
  std::atomic<uint64_t> heartbeats_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;    // GUARDED_BY(mu_)
  std::set<uint64_t> busy_;  // GUARDED_BY(mu_)
  // The controller's latest list of dropped rows that may go.
  std::vector<sharding::Store::ReclaimRange> reclaim_;  // GUARDED_BY(mu_)
  int running_commands_ = 0;                            // GUARDED_BY(mu_)
  std::thread thread_;
  std::thread map_thread_;
  std::thread gc_thread_;
  std::atomic<uint64_t> gc_target_{0};
  std::unique_ptr<gateway::ClusterKv> resolver_;  // gc_thread_ only; made when first needed
};

Result<std::unique_ptr<StorageNode>> StorageNode::Open(StorageNodeOptions options,
                                                       storage::Engine* engine) {
  if (options.self.id() == 0) return Status::InvalidArgument("a storage node needs an id");
  std::unique_ptr<StorageNode> n(new StorageNode(std::move(options)));
  const auto& o = n->options_;
  n->link_ = std::make_unique<ControllerLink>(
      o.controllers, std::min(o.request_timeout, std::chrono::milliseconds(3000)));
  n->tso_ = std::make_unique<ControllerTso>(n->link_.get(), o.timestamp_batch,
                                            std::chrono::milliseconds(1000), o.local_timestamps);
  n->transport_ = std::make_unique<rpc::GrpcRaftTransport>(std::map<uint64_t, std::string>{});
  n->transports_ = std::make_unique<GroupTransportsAdapter>(n->transport_.get());
  sharding::StoreOptions so = o.store;
  so.node_id = o.self.id();
  ASSIGN_OR_RETURN(n->store_, sharding::Store::Open(so, engine, n->tso_.get(),
                                                    SystemClock::Default(), n->transports_.get()));
  sharding::Store* store = n->store_.get();
  n->store_->SetShardIdAllocator([link = n->link_.get()] { return link->AllocateShardId(); });
  n->transport_->SetSnapshotReporter([store](uint64_t group, uint64_t to, bool ok) {
    store->ReportSnapshot(group, consensus::NodeId(to), ok);
  });
  n->raft_service_ = std::make_unique<rpc::RaftTransportService>(
      [store](uint64_t group, consensus::Message m) { store->Deliver(group, std::move(m)); });
  n->shard_service_ = std::make_unique<rpc::ShardKvService>(store, o.request_timeout);
  n->agent_ =
      std::make_unique<NodeAgent>(o.self.id(), o.self, n->link_.get(), store, n->transport_.get(),
                                  o.heartbeat, o.data_dir, o.peer_addrs, o.controllers);
  return n;
}

StorageNode::StorageNode(StorageNodeOptions options) : options_(std::move(options)) {}

StorageNode::~StorageNode() {
  if (agent_) agent_->Stop();
  if (transport_) transport_->SetSnapshotReporter(nullptr);
  store_.reset();
  transport_.reset();
}

void StorageNode::RegisterOn(grpc::ServerBuilder* builder) {
  builder->RegisterService(raft_service_.get());
  builder->RegisterService(shard_service_.get());
}

void StorageNode::RegisterShardKvOn(grpc::ServerBuilder* builder) {
  builder->RegisterService(shard_service_.get());
}

void StorageNode::Start() { agent_->Start(); }

bool StorageNode::registered() const { return agent_->registered(); }

rpc::ShardClient* StorageNode::local_client() { return shard_service_.get(); }
uint64_t StorageNode::heartbeats() const { return agent_->heartbeats(); }

std::string StorageNode::ShardsJson() const {
  std::string out = "{\"shards\":[";
  bool first = true;
  for (const auto& d : store_->Describe()) {
    if (!first) out += ",";
    first = false;
    auto gs = store_->GroupStatusOf(d.id);
    out += Json({{"id", d.id},
                 {"conf_ver", d.epoch.conf_ver},
                 {"version", d.epoch.version},
                 {"leader", gs.ok() ? gs->leader.value() : 0},
                 {"applied", gs.ok() ? gs->applied.value() : 0}});
  }
  return out + "]}";
}

}  // namespace gojodb::storage_node
