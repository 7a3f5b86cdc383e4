#include "api/grpc/controller_service.h"

#include <algorithm>

#include "api/grpc/convert.h"
#include "api/grpc/shard_convert.h"
#include "core/mvcc/key_codec.h"
#include "internal/version.h"

namespace gojodb::rpc {

using controller::Controller;
namespace ctl = gojodb::controller;

namespace {

constexpr char kForwardedKey[] = "gojodb-forwarded";

grpc::Status Reply(grpc::ServerContext* ctx, const Status& s) {
  AddDetailsToContext(s, ctx);
  return ToGrpc(s);
}

// Answers with `local`, or, when it says "not the leader" and names one, with the
// leader's answer to the same request.
template <typename Svc, typename Req, typename Resp>
grpc::Status Respond(grpc::ServerContext* ctx, LeaderChannels* leaders, const Status& local,
                     const Req& req, Resp* resp,
                     grpc::Status (Svc::Stub::*method)(grpc::ClientContext*, const Req&, Resp*)) {
  if (local.ok()) return grpc::Status::OK;
  const uint64_t leader = Controller::LeaderHint(local);
  if (local.code() != StatusCode::kUnavailable || leader == 0 ||
      ctx->client_metadata().count(kForwardedKey) > 0) {
    return Reply(ctx, local);
  }
  auto channel = leaders->Get(leader);
  if (!channel) return Reply(ctx, local);
  auto stub = Svc::NewStub(channel);
  grpc::ClientContext cctx;
  cctx.AddMetadata(kForwardedKey, "1");
  cctx.set_deadline(
      std::min(ctx->deadline(), std::chrono::system_clock::now() + std::chrono::seconds(15)));
  resp->Clear();
  grpc::Status s = ((*stub).*method)(&cctx, req, resp);
  if (s.ok()) return s;
  return Reply(ctx, FromGrpc(s, &cctx));
}

// A read barrier within the call's deadline (at most 5 s): UNAVAILABLE, naming `what`,
// when this member cannot confirm that it has applied every committed change.
Status ConfirmCurrent(Controller* c, const grpc::ServerContext* ctx, const char* what) {
  const auto timeout = std::chrono::duration_cast<std::chrono::milliseconds>(
      ctx->deadline() - std::chrono::system_clock::now());
  Status s = c->ReadBarrier(
      std::clamp(timeout, std::chrono::milliseconds(1), std::chrono::milliseconds(5000)));
  if (s.ok()) return s;
  return Status::Unavailable(std::string("this controller cannot confirm its ") + what +
                             " is current: " + s.message());
}

}  // namespace

// --- Conversions ------------------------------------------------------------------------

void ToProto(const ctl::NodeRecord& in, v1::NodeDescriptor* out) {
  out->set_id(in.id);
  out->set_grpc_addr(in.grpc_addr);
  out->set_http_addr(in.http_addr);
  out->set_capacity_bytes(in.capacity_bytes);
  for (const auto& [k, v] : in.labels) (*out->mutable_labels())[k] = v;
  out->set_admin_state(std::string(ctl::AdminStateName(in.admin)));
}

ctl::NodeRecord FromProto(const v1::NodeDescriptor& in) {
  ctl::NodeRecord n;
  n.id = in.id();
  n.grpc_addr = in.grpc_addr();
  n.http_addr = in.http_addr();
  n.capacity_bytes = in.capacity_bytes();
  for (const auto& [k, v] : in.labels()) n.labels[k] = v;
  return n;
}

void ToProto(const ctl::Settings& in, v1::Settings* out) {
  out->set_replication_factor(in.replication_factor);
  out->set_shard_split_bytes(in.shard_split_bytes);
  out->set_gc_ttl_seconds(in.gc_ttl_seconds);
  out->set_node_suspect_timeout_ms(in.node_suspect_timeout_ms);
  out->set_node_dead_timeout_ms(in.node_dead_timeout_ms);
  out->set_max_ops_per_round(in.max_ops_per_round);
  out->set_schema_lease_ms(in.schema_lease_ms);
}

void FillCollection(const ctl::CollectionRecord& c, v1::CollectionInfo* out) {
  out->set_name(c.name);
  out->set_id(c.id);
  out->set_created_at(mvcc::ComposeTimestamp(c.created_ms, 0));
  out->set_schema_json(c.schema_json);
  out->set_schema_lease_ms(c.schema_lease_ms);
  out->set_schema_version(c.schema_version);
  for (const auto& d : c.indexes) {
    auto* p = out->add_indexes();
    p->set_name(d.name);
    for (const auto& f : d.fields) p->add_fields(f);
    p->set_unique(d.unique);
    p->set_id(d.id);
    p->set_state(ctl::IndexStateName(d.state));
    p->set_usable_from_ts(d.usable_from_ts);
    p->set_build_resume(d.build_resume);
    p->set_error(d.error);
  }
}

Result<ctl::IndexDef> IndexDefOf(const v1::IndexSpec& in) {
  ctl::IndexDef d{in.name(), {in.fields().begin(), in.fields().end()}, in.unique(), in.id()};
  if (!in.state().empty()) {
    auto state = ctl::ParseIndexState(in.state());
    if (!state) return Status::InvalidArgument("unknown index state '" + in.state() + "'");
    d.state = *state;
  }
  d.usable_from_ts = in.usable_from_ts();
  d.build_resume = in.build_resume();
  d.error = in.error();
  return d;
}

std::shared_ptr<grpc::Channel> LeaderChannels::Get(uint64_t id) {
  const std::string addr = resolve_(id);
  if (addr.empty()) return nullptr;
  std::lock_guard lock(mu_);
  auto& ch = channels_[addr];
  if (!ch) ch = grpc::CreateChannel(addr, grpc::InsecureChannelCredentials());
  return ch;
}

// --- Controller -------------------------------------------------------------------------

class ControllerServices::ControllerImpl final : public v1::Controller::Service {
 public:
  ControllerImpl(Controller* c, LeaderChannels* leaders) : c_(c), leaders_(leaders) {}

  grpc::Status RegisterNode(grpc::ServerContext* ctx, const v1::RegisterNodeRequest* req,
                            v1::RegisterNodeResponse* resp) override {
    Status s = [&]() -> Status {
      ASSIGN_OR_RETURN(auto n, c_->RegisterNode(FromProto(req->node())));
      ToProto(n, resp->mutable_node());
      return Status::OK();
    }();
    return Respond<v1::Controller>(ctx, leaders_, s, *req, resp,
                                   &v1::Controller::Stub::RegisterNode);
  }

  grpc::Status Heartbeat(grpc::ServerContext* ctx, const v1::HeartbeatRequest* req,
                         v1::HeartbeatResponse* resp) override {
    Status s = [&]() -> Status {
      ctl::NodeStats stats;
      stats.capacity_bytes = req->stats().capacity_bytes();
      stats.used_bytes = req->stats().used_bytes();
      stats.shard_count = req->stats().shard_count();
      stats.leader_count = req->stats().leader_count();
      stats.load = req->stats().load();
      std::vector<ctl::ShardRecord> reports;
      for (const auto& d : req->shards()) reports.push_back(FromProto(d));
      std::vector<ctl::GcResolvedReport> gc_resolved;
      for (const auto& g : req->gc_resolved()) {
        gc_resolved.push_back({g.shard(), g.version(), g.fence()});
      }
      std::vector<ctl::ReclaimedReport> reclaimed;
      for (const auto& r : req->reclaimed()) reclaimed.push_back({r.shard(), r.version(), r.id()});
      ctl::GcPoints gc;
      ASSIGN_OR_RETURN(auto cmds,
                       c_->Heartbeat(req->node_id(), stats, reports, gc_resolved, reclaimed, &gc));
      resp->set_gc_target(gc.target);
      resp->set_gc_safe_point(gc.safe_point);
      for (const auto& e : gc.reclaim) {
        auto* p = resp->add_reclaim();
        p->set_tenant(e.tenant_id);
        p->set_id(e.id);
      }
      for (const auto& c : cmds) {
        auto* p = resp->add_commands();
        p->set_kind(std::string(ctl::ShardCommandKindName(c.kind)));
        ToProto(c.shard, p->mutable_shard());
        p->set_node(c.node);
        p->set_reason(c.reason);
      }
      return Status::OK();
    }();
    return Respond<v1::Controller>(ctx, leaders_, s, *req, resp, &v1::Controller::Stub::Heartbeat);
  }

  grpc::Status HoldGc(grpc::ServerContext* ctx, const v1::HoldGcRequest* req,
                      v1::HoldGcResponse* resp) override {
    Status s = [&]() -> Status {
      ASSIGN_OR_RETURN(auto gc, c_->HoldGc(req->holder(), req->min_start_ts(), req->ttl_ms()));
      resp->set_gc_target(gc.target);
      resp->set_gc_safe_point(gc.safe_point);
      return Status::OK();
    }();
    return Respond<v1::Controller>(ctx, leaders_, s, *req, resp, &v1::Controller::Stub::HoldGc);
  }

  grpc::Status AddIndex(grpc::ServerContext* ctx, const v1::IndexChangeRequest* req,
                        v1::CollectionInfo* resp) override {
    Status s = [&]() -> Status {
      ASSIGN_OR_RETURN(auto d, IndexDefOf(req->index()));
      ASSIGN_OR_RETURN(auto c, c_->AddIndex("default", req->collection(), d));
      FillCollection(c, resp);
      return Status::OK();
    }();
    return Respond<v1::Controller>(ctx, leaders_, s, *req, resp, &v1::Controller::Stub::AddIndex);
  }

  grpc::Status UpdateIndex(grpc::ServerContext* ctx, const v1::IndexChangeRequest* req,
                           v1::CollectionInfo* resp) override {
    Status s = [&]() -> Status {
      ASSIGN_OR_RETURN(auto d, IndexDefOf(req->index()));
      ASSIGN_OR_RETURN(auto c, c_->UpdateIndex("default", req->collection(), d));
      FillCollection(c, resp);
      return Status::OK();
    }();
    return Respond<v1::Controller>(ctx, leaders_, s, *req, resp,
                                   &v1::Controller::Stub::UpdateIndex);
  }

  grpc::Status RemoveIndex(grpc::ServerContext* ctx, const v1::IndexChangeRequest* req,
                           v1::CollectionInfo* resp) override {
    Status s = [&]() -> Status {
      ASSIGN_OR_RETURN(auto c, c_->RemoveIndex("default", req->collection(), req->index().name(),
                                               req->index().id()));
      FillCollection(c, resp);
      return Status::OK();
    }();
    return Respond<v1::Controller>(ctx, leaders_, s, *req, resp,
                                   &v1::Controller::Stub::RemoveIndex);
  }

  grpc::Status GetTimestamps(grpc::ServerContext* ctx, const v1::GetTimestampsRequest* req,
                             v1::GetTimestampsResponse* resp) override {
    Status s = [&]() -> Status {
      ASSIGN_OR_RETURN(uint64_t first, c_->AllocateTimestamps(req->count()));
      resp->set_first(first);
      resp->set_count(req->count());
      return Status::OK();
    }();
    return Respond<v1::Controller>(ctx, leaders_, s, *req, resp,
                                   &v1::Controller::Stub::GetTimestamps);
  }

  grpc::Status AllocateShardIds(grpc::ServerContext* ctx, const v1::AllocateShardIdsRequest* req,
                                v1::AllocateShardIdsResponse* resp) override {
    Status s = [&]() -> Status {
      ASSIGN_OR_RETURN(uint64_t first, c_->AllocateShardIds(req->count()));
      resp->set_first(first);
      resp->set_count(req->count());
      return Status::OK();
    }();
    return Respond<v1::Controller>(ctx, leaders_, s, *req, resp,
                                   &v1::Controller::Stub::AllocateShardIds);
  }

  grpc::Status GetShardMap(grpc::ServerContext* ctx, const v1::GetShardMapRequest* req,
                           v1::GetShardMapResponse* resp) override {
    // A long poll waits in slices, so a cancelled call (the client went away, or the
    // server is shutting down) lets its thread go within one slice.
    const auto deadline = std::chrono::steady_clock::now() +
                          std::chrono::milliseconds(std::min<uint32_t>(req->wait_ms(), 60000));
    if (req->linearizable()) {
      if (Status s = ConfirmCurrent(c_, ctx, "shard map"); !s.ok()) return Reply(ctx, s);
    }
    ctl::ClusterState st = c_->WaitForChange(req->known_version(), false, {});
    while (st.map_version <= req->known_version() && !ctx->IsCancelled()) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      st = c_->WaitForChange(req->known_version(), false,
                             std::min(left, std::chrono::milliseconds(200)));
    }
    resp->set_version(st.map_version);
    for (const auto& [id, s] : st.shards) ToProto(s, resp->add_shards());
    for (const auto& [id, n] : st.nodes) ToProto(n, resp->add_nodes());
    return grpc::Status::OK;
  }

  grpc::Status ListNodes(grpc::ServerContext* ctx, const v1::ListNodesRequest* req,
                         v1::ListNodesResponse* resp) override {
    Status s = [&]() -> Status {
      ASSIGN_OR_RETURN(auto view, c_->View());
      for (const auto& n : view.nodes) {
        auto* p = resp->add_nodes();
        ToProto(n.record, p->mutable_node());
        p->set_liveness(std::string(ctl::LivenessName(n.liveness)));
        p->mutable_stats()->set_capacity_bytes(n.stats.capacity_bytes);
        p->mutable_stats()->set_used_bytes(n.stats.used_bytes);
        p->mutable_stats()->set_shard_count(n.stats.shard_count);
        p->mutable_stats()->set_leader_count(n.stats.leader_count);
        p->mutable_stats()->set_load(n.stats.load);
        p->set_last_heartbeat_ms(n.last_heartbeat_ms);
      }
      return Status::OK();
    }();
    return Respond<v1::Controller>(ctx, leaders_, s, *req, resp, &v1::Controller::Stub::ListNodes);
  }

  grpc::Status DecommissionNode(grpc::ServerContext* ctx, const v1::DecommissionNodeRequest* req,
                                v1::DecommissionNodeResponse* resp) override {
    Status s = c_->DecommissionNode(req->node_id());
    return Respond<v1::Controller>(ctx, leaders_, s, *req, resp,
                                   &v1::Controller::Stub::DecommissionNode);
  }

  grpc::Status AddController(grpc::ServerContext* ctx, const v1::AddControllerRequest* req,
                             v1::AddControllerResponse* resp) override {
    Status s = c_->AddController(req->id(), req->grpc_addr());
    return Respond<v1::Controller>(ctx, leaders_, s, *req, resp,
                                   &v1::Controller::Stub::AddController);
  }

  grpc::Status RemoveController(grpc::ServerContext* ctx, const v1::RemoveControllerRequest* req,
                                v1::RemoveControllerResponse* resp) override {
    Status s = c_->RemoveController(req->id());
    return Respond<v1::Controller>(ctx, leaders_, s, *req, resp,
                                   &v1::Controller::Stub::RemoveController);
  }

  grpc::Status GetSettings(grpc::ServerContext*, const v1::GetSettingsRequest*,
                           v1::Settings* resp) override {
    ToProto(c_->State().settings, resp);
    return grpc::Status::OK;
  }

  grpc::Status UpdateSettings(grpc::ServerContext* ctx, const v1::UpdateSettingsRequest* req,
                              v1::Settings* resp) override {
    Status s = [&]() -> Status {
      ASSIGN_OR_RETURN(auto settings, c_->UpdateSettings(req->patch_json()));
      ToProto(settings, resp);
      return Status::OK();
    }();
    return Respond<v1::Controller>(ctx, leaders_, s, *req, resp,
                                   &v1::Controller::Stub::UpdateSettings);
  }

  grpc::Status CreateTenant(grpc::ServerContext* ctx, const v1::CreateTenantRequest* req,
                            v1::Tenant* resp) override {
    Status s = [&]() -> Status {
      ASSIGN_OR_RETURN(auto t, c_->CreateTenant(req->name()));
      resp->set_id(t.id);
      resp->set_name(t.name);
      return Status::OK();
    }();
    return Respond<v1::Controller>(ctx, leaders_, s, *req, resp,
                                   &v1::Controller::Stub::CreateTenant);
  }

 private:
  Controller* const c_;
  LeaderChannels* const leaders_;
};

// --- Admin ------------------------------------------------------------------------------

class ControllerServices::AdminImpl final : public v1::Admin::Service {
 public:
  AdminImpl(Controller* c, LeaderChannels* leaders) : c_(c), leaders_(leaders) {}

  grpc::Status ClusterStatus(grpc::ServerContext* ctx, const v1::ClusterStatusRequest* req,
                             v1::ClusterStatusResponse* resp) override {
    Status s = [&]() -> Status {
      ASSIGN_OR_RETURN(auto view, c_->View());
      ASSIGN_OR_RETURN(auto gc, c_->Gc());
      resp->set_gc_safe_point(gc.safe_point);
      resp->set_gc_target(gc.target);
      resp->set_gc_reclaim_pending(gc.reclaim_pending);
      resp->set_mode("cluster");
      resp->set_version(std::string(kVersion));
      resp->set_leader(view.leader);
      for (const auto& m : view.controllers) {
        auto* p = resp->add_controllers();
        p->set_id(m.member.id);
        p->set_role(m.role);
        p->set_grpc_addr(m.member.grpc_addr);
        p->set_http_addr(m.member.http_addr);
        p->set_state(m.reachable ? "up" : "unreachable");
      }
      for (const auto& n : view.nodes) {
        auto* p = resp->add_storage_nodes();
        p->set_id(n.record.id);
        p->set_role(std::string(ctl::AdminStateName(n.record.admin)));
        p->set_grpc_addr(n.record.grpc_addr);
        p->set_http_addr(n.record.http_addr);
        p->set_state(std::string(ctl::LivenessName(n.liveness)));
      }
      for (const auto& sh : view.shards) {
        auto* p = resp->add_shards();
        p->set_id(sh.id);
        p->set_start_key(sh.start_key);
        p->set_end_key(sh.end_key);
        for (const auto& r : sh.replicas) p->add_replicas(r.node);
        p->set_leader(sh.leader);
      }
      return Status::OK();
    }();
    return Respond<v1::Admin>(ctx, leaders_, s, *req, resp, &v1::Admin::Stub::ClusterStatus);
  }

 private:
  Controller* const c_;
  LeaderChannels* const leaders_;
};

// --- Catalog (the default tenant) -------------------------------------------------------

class ControllerServices::CatalogImpl final : public v1::Catalog::Service {
 public:
  CatalogImpl(Controller* c, LeaderChannels* leaders) : c_(c), leaders_(leaders) {}

  static void Fill(const ctl::CollectionRecord& c, v1::CollectionInfo* out) {
    FillCollection(c, out);
  }

  grpc::Status CreateCollection(grpc::ServerContext* ctx, const v1::CreateCollectionRequest* req,
                                v1::CollectionInfo* resp) override {
    Status s = [&]() -> Status {
      std::vector<ctl::IndexDef> indexes;
      for (const auto& i : req->indexes()) {
        indexes.push_back({i.name(), {i.fields().begin(), i.fields().end()}, i.unique()});
      }
      ASSIGN_OR_RETURN(auto c,
                       c_->CreateCollection("default", req->name(), req->schema_json(), indexes));
      Fill(c, resp);
      return Status::OK();
    }();
    return Respond<v1::Catalog>(ctx, leaders_, s, *req, resp, &v1::Catalog::Stub::CreateCollection);
  }

  grpc::Status ListCollections(grpc::ServerContext*, const v1::ListCollectionsRequest*,
                               v1::ListCollectionsResponse* resp) override {
    const auto st = c_->State();
    for (const auto& [key, c] : st.collections) {
      if (key.first == ctl::kDefaultTenantId) Fill(c, resp->add_collections());
    }
    return grpc::Status::OK;
  }

  grpc::Status DescribeCollection(grpc::ServerContext* ctx,
                                  const v1::DescribeCollectionRequest* req,
                                  v1::CollectionInfo* resp) override {
    // Linearizable: a router that took a timestamp before asking gets a record no older
    // than that timestamp (its schema lease counts from it).
    if (Status s = ConfirmCurrent(c_, ctx, "catalog"); !s.ok()) return Reply(ctx, s);
    const auto st = c_->State();
    auto it = st.collections.find({ctl::kDefaultTenantId, req->name()});
    if (it == st.collections.end()) {
      return Reply(ctx, Status::NotFound("collection '" + req->name() + "' does not exist"));
    }
    Fill(it->second, resp);
    return grpc::Status::OK;
  }

  grpc::Status DropCollection(grpc::ServerContext* ctx, const v1::DropCollectionRequest* req,
                              v1::DropCollectionResponse* resp) override {
    Status s = c_->DropCollection("default", req->name());
    return Respond<v1::Catalog>(ctx, leaders_, s, *req, resp, &v1::Catalog::Stub::DropCollection);
  }

  grpc::Status CreateIndex(grpc::ServerContext* ctx, const v1::CreateIndexRequest*,
                           v1::CollectionInfo*) override {
    return Reply(ctx, Status::Unimplemented("a controller does not build indexes: send "
                                            "CreateIndex to a gateway (gojodb-api)"));
  }
  grpc::Status DropIndex(grpc::ServerContext* ctx, const v1::DropIndexRequest*,
                         v1::CollectionInfo*) override {
    return Reply(ctx, Status::Unimplemented("a controller does not drop indexes: send "
                                            "DropIndex to a gateway (gojodb-api)"));
  }

 private:
  Controller* const c_;
  LeaderChannels* const leaders_;
};

ControllerServices::ControllerServices(Controller* c, LeaderChannels* leaders)
    : controller_(std::make_unique<ControllerImpl>(c, leaders)),
      admin_(std::make_unique<AdminImpl>(c, leaders)),
      catalog_(std::make_unique<CatalogImpl>(c, leaders)) {}

ControllerServices::~ControllerServices() = default;

void ControllerServices::RegisterOn(grpc::ServerBuilder* builder) {
  builder->RegisterService(controller_.get());
  builder->RegisterService(admin_.get());
  builder->RegisterService(catalog_.get());
}

}  // namespace gojodb::rpc
