#include "core/controller/controller.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/mvcc/key_codec.h"

namespace gojodb::controller {

using namespace std::chrono_literals;
using mvcc::kLogicalBits;

namespace {
constexpr uint32_t kMaxTimestampBatch = 1u << 16;
constexpr uint64_t kRedeliverMs = 5000;

ShardCommand::Kind KindOf(OpKind k) {
  switch (k) {
    case OpKind::kAddReplica:
      return ShardCommand::Kind::kAddReplica;
    case OpKind::kRemoveReplica:
      return ShardCommand::Kind::kRemoveReplica;
    case OpKind::kTransferLeader:
      return ShardCommand::Kind::kTransferLeader;
  }
  return ShardCommand::Kind::kAddReplica;
}

bool Contains(const std::vector<consensus::NodeId>& ids, uint64_t id) {
  return std::find(ids.begin(), ids.end(), consensus::NodeId(id)) != ids.end();
}
}  // namespace

std::string_view ShardCommandKindName(ShardCommand::Kind k) {
  switch (k) {
    case ShardCommand::Kind::kCreate:
      return "create";
    case ShardCommand::Kind::kAddReplica:
      return "add_replica";
    case ShardCommand::Kind::kRemoveReplica:
      return "remove_replica";
    case ShardCommand::Kind::kTransferLeader:
      return "transfer_leader";
  }
  return "unknown";
}

Controller::Controller(ControllerOptions options, replication::RaftNode* node,
                       ControllerStateMachine* sm, Clock* clock)
    : options_(std::move(options)), node_(node), sm_(sm), clock_(clock) {
  thread_ = std::thread([this] { Loop(); });
}

Controller::~Controller() {
  {
    std::lock_guard lock(loop_mu_);
    stopping_ = true;
  }
  loop_cv_.notify_all();
  thread_.join();
}

Status Controller::NotLeader(uint64_t leader_id) {
  return Status::Unavailable(leader_id == 0 ? "no controller leader is known"
                                            : "not the controller leader")
      .WithDetail("leader_id", std::to_string(leader_id));
}

uint64_t Controller::LeaderHint(const Status& s) {
  if (s.code() != StatusCode::kUnavailable) return 0;
  for (const auto& [k, v] : s.details()) {
    if (k != "leader_id" || v.empty() || v.size() > 20) continue;
    uint64_t id = 0;
    for (char c : v) {
      if (c < '0' || c > '9') return 0;
      id = id * 10 + static_cast<uint64_t>(c - '0');
    }
    return id;
  }
  return 0;
}

bool Controller::IsLeader() const { return node_->GetStatus().is_leader; }
uint64_t Controller::LeaderId() const { return node_->GetStatus().leader.value(); }

Status Controller::ProposeCommand(const std::string& command, std::string* result) {
  auto st = node_->GetStatus();
  if (!st.is_leader) return NotLeader(st.leader.value());
  std::string outcome;
  RETURN_IF_ERROR(node_->Propose(command, options_.request_timeout, &outcome));
  return DecodeOutcome(outcome, result);
}

Result<uint64_t> Controller::AllocateShardIds(uint32_t count) {
  std::string result;
  RETURN_IF_ERROR(ProposeCommand(cmd::AllocateShardIds(count), &result));
  auto j = nlohmann::json::parse(result, nullptr, false);
  if (!j.is_object() || !j.contains("first") || !j["first"].is_number_unsigned()) {
    return Status::Internal("malformed shard id allocation outcome");
  }
  return j["first"].get<uint64_t>();
}

// --- Timestamps -------------------------------------------------------------------------

Status Controller::TakeOffice(uint64_t term) {
  tso_ = Tso();
  // Everything committed before this term, including earlier leaders' limits, applies
  // here before we read the limit.
  RETURN_IF_ERROR(node_->ReadBarrier(options_.request_timeout));
  const uint64_t prev_limit = sm_->State().tso_limit_ms;
  const uint64_t start_ms = std::max(clock_->NowMillis(), prev_limit + 1);
  const uint64_t limit = start_ms + options_.tso_window_ms;
  RETURN_IF_ERROR(ProposeCommand(cmd::TsoLimit(limit)));
  auto st = node_->GetStatus();
  if (!st.is_leader || st.term != term) return NotLeader(st.leader.value());
  tso_.term = term;
  tso_.last = (start_ms << kLogicalBits) - 1;
  tso_.limit_ms = limit;
  return Status::OK();
}

Result<uint64_t> Controller::AllocateTimestamps(uint32_t count) {
  if (count == 0 || count > kMaxTimestampBatch) {
    return Status::InvalidArgument("count must be between 1 and " +
                                   std::to_string(kMaxTimestampBatch));
  }
  auto st = node_->GetStatus();
  if (!st.is_leader) return NotLeader(st.leader.value());
  const uint64_t term = st.term;
  uint64_t first = 0;
  {
    std::lock_guard lock(tso_mu_);
    if (tso_.term != term) {
      Status s = TakeOffice(term);
      if (!s.ok()) {
        tso_ = Tso();
        return s;
      }
    }
    first = std::max(clock_->NowMillis() << kLogicalBits, tso_.last + 1);
    const uint64_t last = first + count - 1;
    if ((last >> kLogicalBits) >= tso_.limit_ms) {
      const uint64_t limit = (last >> kLogicalBits) + options_.tso_window_ms;
      Status s = ProposeCommand(cmd::TsoLimit(limit));
      if (!s.ok()) {
        tso_ = Tso();
        return s;
      }
      tso_.limit_ms = limit;
    }
    tso_.last = last;
  }
  // Confirm, after allocating, that a quorum still follows this leader in `term`.
  Status s = node_->ReadBarrier(options_.request_timeout);
  if (!s.ok()) return Status::Unavailable("controller leadership not confirmed: " + s.message());
  st = node_->GetStatus();
  if (!st.is_leader || st.term != term) return NotLeader(st.leader.value());
  return first;
}

// --- Storage nodes ----------------------------------------------------------------------

Result<NodeRecord> Controller::RegisterNode(const NodeRecord& node) {
  RETURN_IF_ERROR(ProposeCommand(cmd::RegisterNode(node)));
  auto st = sm_->State();
  auto it = st.nodes.find(node.id);
  if (it == st.nodes.end()) return Status::Internal("registered node vanished");
  {
    std::lock_guard lock(mu_);
    // A node that registers is alive now.
    auto& info = live_[node.id];
    info.record = it->second;
    info.last_heartbeat_ms = clock_->NowMillis();
  }
  return it->second;
}

Status Controller::DecommissionNode(uint64_t node) {
  return ProposeCommand(cmd::SetNodeAdmin(node, AdminState::kDecommissioning));
}

void Controller::ResetLeaderStateIfNewTerm(uint64_t term) {
  if (leader_term_ == term) return;
  // A new leader starts every node's clock now, so that a failover never declares
  // healthy nodes dead, and forgets operations a previous leader had in flight.
  leader_term_ = term;
  term_start_ms_ = clock_->NowMillis();
  live_.clear();
  pending_.clear();
  pending_creates_.clear();
  gc_holds_.clear();
  gc_resolved_.clear();
  reclaimed_.clear();
  gc_target_ = 0;
}

Liveness Controller::LivenessOf(uint64_t node, uint64_t now_ms, const Settings& s) const {
  uint64_t last = term_start_ms_;
  auto it = live_.find(node);
  if (it != live_.end()) last = std::max(last, it->second.last_heartbeat_ms);
  const uint64_t quiet = now_ms > last ? now_ms - last : 0;
  if (quiet >= s.node_dead_timeout_ms) return Liveness::kDead;
  if (quiet >= s.node_suspect_timeout_ms) return Liveness::kSuspect;
  return Liveness::kUp;
}

Result<std::vector<ShardCommand>> Controller::Heartbeat(
    uint64_t node, const NodeStats& stats, const std::vector<ShardRecord>& reports,
    const std::vector<GcResolvedReport>& gc_resolved, const std::vector<ReclaimedReport>& reclaimed,
    GcPoints* gc) {
  auto gs = node_->GetStatus();
  if (!gs.is_leader) return NotLeader(gs.leader.value());
  ClusterState st = sm_->State();
  auto rec = st.nodes.find(node);
  if (rec == st.nodes.end()) {
    return Status::NotFound("storage node " + std::to_string(node) + " is not registered");
  }
  if (rec->second.admin == AdminState::kRemoved) {
    return Status::FailedPrecondition("storage node " + std::to_string(node) + " was removed");
  }
  const uint64_t now = clock_->NowMillis();
  // Newer descriptors the node reports go into the map, all in one command.
  std::vector<ShardRecord> newer;
  for (const auto& r : reports) {
    auto known = st.shards.find(r.id);
    if (known == st.shards.end() || r.epoch.conf_ver > known->second.epoch.conf_ver ||
        r.epoch.version > known->second.epoch.version ||
        (r.epoch == known->second.epoch && r.leader != known->second.leader && r.leader == node)) {
      newer.push_back(r);
    }
  }
  if (!newer.empty()) {
    Status s = ProposeCommand(cmd::UpdateShards(newer));
    // Leadership trouble fails the heartbeat (the node retries elsewhere); reports the
    // map refuses (stale, malformed) are skipped: the node is alive all the same.
    if (s.code() == StatusCode::kUnavailable || s.code() == StatusCode::kDeadlineExceeded) {
      return s;
    }
  }
  std::vector<ShardCommand> out;
  std::lock_guard lock(mu_);
  ResetLeaderStateIfNewTerm(gs.term);
  for (const auto& g : gc_resolved) {
    GcResolvedReport& known = gc_resolved_[g.shard];
    if (g.version > known.version || (g.version == known.version && g.fence > known.fence)) {
      known = g;
    }
  }
  for (const auto& r : reclaimed) {
    if (st.reclaim.count(r.id)) reclaimed_.insert(r);
  }
  if (gc) *gc = {gc_target_, st.gc_safe_point, ReadyToReclaim(st.reclaim, st.gc_safe_point)};
  NodeInfo& info = live_[node];
  info.record = rec->second;
  info.stats = stats;
  info.last_heartbeat_ms = now;
  for (const auto& r : reports) {
    auto it = pending_.find(r.id);
    if (it == pending_.end()) continue;
    const auto& c = it->second.command;
    const bool done = r.epoch.conf_ver > c.shard.epoch.conf_ver ||
                      r.epoch.version > c.shard.epoch.version ||
                      (c.kind == ShardCommand::Kind::kTransferLeader && r.leader == c.node);
    if (done) pending_.erase(it);
  }
  std::erase_if(pending_creates_, [&](const Pending& p) {
    if (p.actor != node) return false;
    return std::any_of(reports.begin(), reports.end(),
                       [&](const ShardRecord& r) { return r.id == p.command.shard.id; });
  });
  auto deliver = [&](Pending& p) {
    if (p.actor != node) return;
    if (p.delivered_ms != 0 && now - p.delivered_ms < kRedeliverMs) return;
    p.delivered_ms = now;
    out.push_back(p.command);
  };
  for (auto& p : pending_creates_) deliver(p);
  for (auto& [id, p] : pending_) deliver(p);
  return out;
}

// --- Catalog and settings ---------------------------------------------------------------

Result<TenantRecord> Controller::CreateTenant(const std::string& name) {
  RETURN_IF_ERROR(ProposeCommand(cmd::CreateTenant(name)));
  const auto st = sm_->State();
  const TenantRecord* t = st.FindTenant(name);
  if (!t) return Status::Internal("created tenant vanished");
  return *t;
}

Result<CollectionRecord> Controller::CreateCollection(const std::string& tenant,
                                                      const std::string& name,
                                                      const std::string& schema_json,
                                                      const std::vector<IndexDef>& indexes) {
  RETURN_IF_ERROR(ProposeCommand(
      cmd::CreateCollection(tenant, name, schema_json, indexes, clock_->NowMillis())));
  const auto st = sm_->State();
  const TenantRecord* t = st.FindTenant(tenant);
  auto it = t ? st.collections.find({t->id, name}) : st.collections.end();
  if (it == st.collections.end()) return Status::Internal("created collection vanished");
  return it->second;
}

// The collection as this member's state holds it (after a command of this member's
// applied: at least as new as the command left it).
Result<CollectionRecord> Controller::FindCollection(const std::string& tenant,
                                                    const std::string& name) const {
  const auto st = sm_->State();
  const TenantRecord* t = st.FindTenant(tenant);
  auto it = t ? st.collections.find({t->id, name}) : st.collections.end();
  if (it == st.collections.end()) {
    return Status::NotFound("collection '" + name + "' does not exist");
  }
  return it->second;
}

Result<CollectionRecord> Controller::AddIndex(const std::string& tenant,
                                              const std::string& collection,
                                              const IndexDef& index) {
  RETURN_IF_ERROR(ProposeCommand(cmd::AddIndex(tenant, collection, index)));
  return FindCollection(tenant, collection);
}

Result<CollectionRecord> Controller::UpdateIndex(const std::string& tenant,
                                                 const std::string& collection,
                                                 const IndexDef& index) {
  RETURN_IF_ERROR(ProposeCommand(cmd::UpdateIndex(tenant, collection, index)));
  return FindCollection(tenant, collection);
}

Result<CollectionRecord> Controller::RemoveIndex(const std::string& tenant,
                                                 const std::string& collection,
                                                 const std::string& index, uint32_t id) {
  RETURN_IF_ERROR(ProposeCommand(cmd::RemoveIndex(tenant, collection, index, id)));
  return FindCollection(tenant, collection);
}

Status Controller::ReadBarrier(std::chrono::milliseconds timeout) {
  return node_->ReadBarrier(timeout);
}

Status Controller::DropCollection(const std::string& tenant, const std::string& name) {
  return ProposeCommand(cmd::DropCollection(tenant, name));
}

Result<Settings> Controller::UpdateSettings(const std::string& patch_json) {
  RETURN_IF_ERROR(ProposeCommand(cmd::UpdateSettings(patch_json)));
  return sm_->State().settings;
}

// --- Controller membership --------------------------------------------------------------

Status Controller::AddController(uint64_t id, const std::string& grpc_addr) {
  if (id == 0 || grpc_addr.empty()) {
    return Status::InvalidArgument("a controller needs a positive id and a gRPC address");
  }
  auto gs = node_->GetStatus();
  if (!gs.is_leader) return NotLeader(gs.leader.value());
  if (Contains(gs.conf_state.voters, id)) {
    return Status::AlreadyExists("controller " + std::to_string(id) + " is already a member");
  }
  const auto st = sm_->State();
  for (const auto& [mid, m] : st.members) {
    if (mid != id && m.grpc_addr == grpc_addr) {
      return Status::AlreadyExists("address " + grpc_addr + " belongs to controller " +
                                   std::to_string(mid));
    }
  }
  // The address first, so that the leader can reach the new member.
  auto it = st.members.find(id);
  if (it == st.members.end() || it->second.grpc_addr != grpc_addr) {
    RETURN_IF_ERROR(ProposeCommand(cmd::SetMember({id, grpc_addr, ""})));
  }
  // As a learner until it has caught up, so that a slow new member never stalls the
  // quorum.
  if (!Contains(gs.conf_state.learners, id)) {
    consensus::ConfChange cc;
    cc.changes.push_back({consensus::ConfChangeType::kAddLearnerNode, consensus::NodeId(id)});
    RETURN_IF_ERROR(node_->ProposeConfChange(cc, options_.request_timeout));
  }
  const auto deadline = std::chrono::steady_clock::now() + options_.catch_up_timeout;
  while (true) {
    gs = node_->GetStatus();
    if (!gs.is_leader) return NotLeader(gs.leader.value());
    bool caught_up = false;
    for (const auto& p : gs.progress) {
      if (p.id.value() == id && p.match >= gs.commit) caught_up = true;
    }
    if (caught_up) break;
    if (std::chrono::steady_clock::now() > deadline) {
      return Status::DeadlineExceeded("controller " + std::to_string(id) +
                                      " has not caught up (is it running with --join?); it "
                                      "stays a learner, and adding it again promotes it");
    }
    std::this_thread::sleep_for(20ms);
  }
  consensus::ConfChange promote;
  promote.changes.push_back({consensus::ConfChangeType::kAddNode, consensus::NodeId(id)});
  return node_->ProposeConfChange(promote, options_.request_timeout);
}

Status Controller::RemoveController(uint64_t id) {
  auto gs = node_->GetStatus();
  if (!gs.is_leader) return NotLeader(gs.leader.value());
  const auto& voters = gs.conf_state.voters;
  const bool voter = Contains(voters, id);
  if (!voter && !Contains(gs.conf_state.learners, id)) {
    return Status::NotFound("controller " + std::to_string(id) + " is not a member");
  }
  if (voter) {
    if (voters.size() == 1) {
      return Status::FailedPrecondition("cannot remove the last controller");
    }
    // The remaining voters must still form a quorum among those that answer.
    size_t remaining = 0, active = 0;
    for (const auto& p : gs.progress) {
      if (p.is_learner || p.id.value() == id || !Contains(voters, p.id.value())) continue;
      ++remaining;
      if (p.recent_active || p.id == gs.id) ++active;
    }
    if (active < remaining / 2 + 1) {
      return Status::FailedPrecondition(
          "removing controller " + std::to_string(id) + " would leave " + std::to_string(active) +
          " of " + std::to_string(remaining) + " voters reachable, below a quorum");
    }
  }
  if (id == options_.id) {
    // Hand leadership to the most caught-up other voter first; the caller retries on
    // the new leader.
    consensus::NodeId best;
    consensus::LogIndex best_match;
    for (const auto& p : gs.progress) {
      if (p.id.value() == id || p.is_learner || !p.recent_active) continue;
      if (best.none() || p.match > best_match) {
        best = p.id;
        best_match = p.match;
      }
    }
    if (best.none()) return Status::FailedPrecondition("no other controller to lead");
    RETURN_IF_ERROR(node_->TransferLeadership(best));
    const auto deadline = std::chrono::steady_clock::now() + 3s;
    while (std::chrono::steady_clock::now() < deadline) {
      gs = node_->GetStatus();
      if (!gs.is_leader && !gs.leader.none()) return NotLeader(gs.leader.value());
      std::this_thread::sleep_for(20ms);
    }
    return Status::Unavailable("leadership transfer did not finish; retry");
  }
  consensus::ConfChange cc;
  cc.changes.push_back({consensus::ConfChangeType::kRemoveNode, consensus::NodeId(id)});
  RETURN_IF_ERROR(node_->ProposeConfChange(cc, options_.request_timeout));
  Status s = ProposeCommand(cmd::RemoveMember(id));
  if (!s.ok() && s.code() != StatusCode::kNotFound) return s;
  return Status::OK();
}

Result<ClusterView> Controller::View() {
  auto gs = node_->GetStatus();
  if (!gs.is_leader) return NotLeader(gs.leader.value());
  ClusterState st = sm_->State();
  ClusterView v;
  v.leader = gs.id.value();
  v.term = gs.term;
  v.map_version = st.map_version;
  auto add_member = [&](consensus::NodeId nid, const std::string& role) {
    MemberInfo mi;
    auto it = st.members.find(nid.value());
    mi.member = it != st.members.end() ? it->second : Member{nid.value(), "", ""};
    mi.role = nid == gs.id ? "leader" : role;
    for (const auto& p : gs.progress) {
      if (p.id == nid && nid != gs.id) mi.reachable = p.recent_active;
    }
    v.controllers.push_back(mi);
  };
  for (auto nid : gs.conf_state.voters) add_member(nid, "follower");
  for (auto nid : gs.conf_state.learners) add_member(nid, "learner");
  std::sort(v.controllers.begin(), v.controllers.end(),
            [](const MemberInfo& a, const MemberInfo& b) { return a.member.id < b.member.id; });
  const uint64_t now = clock_->NowMillis();
  std::lock_guard lock(mu_);
  ResetLeaderStateIfNewTerm(gs.term);
  for (const auto& [id, rec] : st.nodes) {
    NodeInfo ni;
    auto it = live_.find(id);
    if (it != live_.end()) ni = it->second;
    ni.record = rec;
    ni.liveness = LivenessOf(id, now, st.settings);
    v.nodes.push_back(ni);
  }
  for (const auto& [id, s] : st.shards) v.shards.push_back(s);
  return v;
}

// --- Background work --------------------------------------------------------------------

void Controller::Loop() {
  while (true) {
    {
      std::unique_lock lock(loop_mu_);
      loop_cv_.wait_for(lock, options_.placement_interval, [&] { return stopping_; });
      if (stopping_) return;
    }
    auto gs = node_->GetStatus();
    if (gs.leader.none()) continue;
    // Every member keeps its own addresses in the replicated state (followers' proposals
    // are forwarded to the leader by Raft).
    const auto st = sm_->State();
    Member me{options_.id, options_.grpc_addr, options_.http_addr};
    auto it = st.members.find(options_.id);
    const bool member = Contains(gs.conf_state.voters, options_.id) ||
                        Contains(gs.conf_state.learners, options_.id);
    if (member && (it == st.members.end() || !(it->second == me))) {
      std::string outcome;
      (void)node_->Propose(cmd::SetMember(me), options_.request_timeout, &outcome);
    }
    if (!gs.is_leader) continue;
    // Commit the TSO limit ahead of use, so that allocation rarely waits for Raft.
    uint64_t term = 0, limit = 0;
    {
      std::lock_guard lock(tso_mu_);
      term = tso_.term;
      limit = tso_.limit_ms;
    }
    if (term == gs.term && limit < clock_->NowMillis() + options_.tso_window_ms / 2) {
      const uint64_t next = clock_->NowMillis() + options_.tso_window_ms;
      if (ProposeCommand(cmd::TsoLimit(next)).ok()) {
        std::lock_guard lock(tso_mu_);
        if (tso_.term == term) tso_.limit_ms = std::max(tso_.limit_ms, next);
      }
    }
    LeaderRound();
  }
}

Result<GcPoints> Controller::HoldGc(const std::string& holder, uint64_t min_start_ts,
                                    uint64_t ttl_ms) {
  if (holder.empty() || holder.size() > 128) {
    return Status::InvalidArgument("a GC hold needs a holder name of 1..128 bytes");
  }
  const auto longest = static_cast<uint64_t>(options_.gc_hold_grace.count());
  if (ttl_ms == 0 || ttl_ms > longest) {
    // A new leader waits gc_hold_grace for holds: a longer one could lapse unseen.
    return Status::InvalidArgument("a GC hold lasts 1.." + std::to_string(longest) + " ms");
  }
  auto gs = node_->GetStatus();
  if (!gs.is_leader) return NotLeader(gs.leader.value());
  const ClusterState st = sm_->State();
  std::lock_guard lock(mu_);
  ResetLeaderStateIfNewTerm(gs.term);
  if (min_start_ts == 0) {
    gc_holds_.erase(holder);
  } else {
    gc_holds_[holder] = {min_start_ts, clock_->NowMillis() + ttl_ms};
  }
  return GcPoints{gc_target_, st.gc_safe_point};
}

Result<GcPoints> Controller::Gc() {
  auto gs = node_->GetStatus();
  if (!gs.is_leader) return NotLeader(gs.leader.value());
  const ClusterState st = sm_->State();
  std::lock_guard lock(mu_);
  ResetLeaderStateIfNewTerm(gs.term);
  return GcPoints{gc_target_, st.gc_safe_point, {}, st.reclaim.size()};
}

void Controller::GcRound(const ClusterState& st, uint64_t now_ms) {
  uint64_t safe_point = 0;
  std::vector<uint32_t> reclaimed;
  {
    std::lock_guard lock(mu_);
    std::erase_if(gc_holds_, [&](const auto& h) { return h.second.expires_ms <= now_ms; });
    // A new leader has heard no hold yet: wait until every live one has been renewed.
    if (now_ms < term_start_ms_ + static_cast<uint64_t>(options_.gc_hold_grace.count())) return;
    const uint64_t ttl_ms = st.settings.gc_ttl_seconds * 1000;
    gc_target_ = std::max(NextGcTarget(gc_target_, GcTarget(now_ms, ttl_ms, gc_holds_), ttl_ms),
                          st.gc_safe_point);
    // Reports of shards no longer in the map are dropped.
    std::erase_if(gc_resolved_, [&](const auto& r) { return st.shards.count(r.first) == 0; });
    safe_point = std::min(gc_target_, GcSafePointFromReports(st.shards, gc_resolved_));
    // Reports of ids no longer waiting, or of shards at an older epoch, are dropped.
    std::erase_if(reclaimed_, [&](const ReclaimedReport& r) {
      auto s = st.shards.find(r.shard);
      return st.reclaim.count(r.id) == 0 || s == st.shards.end() ||
             s->second.epoch.version != r.version;
    });
    reclaimed = ReclaimedIds(st.shards, st.reclaim, reclaimed_);
  }
  if (safe_point > st.gc_safe_point) (void)ProposeCommand(cmd::GcSafePoint(safe_point));
  for (uint32_t id : reclaimed) (void)ProposeCommand(cmd::ReclaimDone(id));
}

void Controller::LeaderRound() {
  auto gs = node_->GetStatus();
  if (!gs.is_leader) return;
  const ClusterState st = sm_->State();
  const uint64_t now = clock_->NowMillis();
  std::vector<NodeView> nodes;
  std::vector<ShardView> shards;
  std::vector<uint64_t> drained;
  {
    std::lock_guard lock(mu_);
    ResetLeaderStateIfNewTerm(gs.term);
    std::erase_if(pending_, [&](const auto& kv) { return kv.second.deadline_ms <= now; });
    std::erase_if(pending_creates_, [&](const Pending& p) { return p.deadline_ms <= now; });
    for (const auto& [id, rec] : st.nodes) {
      NodeView nv;
      nv.id = id;
      auto zone = rec.labels.find("zone");
      if (zone != rec.labels.end()) nv.zone = zone->second;
      nv.liveness = LivenessOf(id, now, st.settings);
      nv.admin = rec.admin;
      nodes.push_back(nv);
    }
    for (const auto& [id, s] : st.shards) {
      ShardView sv;
      sv.id = id;
      for (const auto& r : s.replicas) sv.replicas.push_back({r.node, r.learner});
      sv.leader = s.leader;
      sv.busy = pending_.count(id) > 0;
      shards.push_back(sv);
    }
  }
  for (const auto& [id, rec] : st.nodes) {
    if (rec.admin != AdminState::kDecommissioning) continue;
    bool hosts = false;
    for (const auto& [sid, s] : st.shards) {
      for (const auto& r : s.replicas) hosts = hosts || r.node == id;
    }
    if (!hosts) drained.push_back(id);
  }
  for (uint64_t id : drained) (void)ProposeCommand(cmd::SetNodeAdmin(id, AdminState::kRemoved));
  GcRound(st, now);

  if (st.shards.empty()) {
    // The cluster's first shard, once enough nodes are up.
    auto chosen =
        ChooseNodesForNewShard(nodes, shards, static_cast<int>(st.settings.replication_factor));
    if (!chosen.ok()) return;
    ShardRecord s;
    s.id = st.next_shard_id;
    for (uint64_t n : *chosen) s.replicas.push_back({n, false});
    if (!ProposeCommand(cmd::BootstrapShards({s})).ok()) return;
    std::lock_guard lock(mu_);
    for (uint64_t n : *chosen) {
      Pending p;
      p.command = {ShardCommand::Kind::kCreate, s, n, "bootstrap"};
      p.actor = n;
      p.deadline_ms = now + static_cast<uint64_t>(options_.operation_timeout.count());
      pending_creates_.push_back(p);
    }
    return;
  }

  PlacementOptions po;
  po.replication_factor = static_cast<int>(st.settings.replication_factor);
  po.max_ops = static_cast<int>(st.settings.max_ops_per_round);
  const auto ops = PlanRound(nodes, shards, po);
  std::lock_guard lock(mu_);
  for (const auto& op : ops) {
    const ShardRecord& s = st.shards.at(op.shard);
    Pending p;
    p.command = {KindOf(op.kind), s, op.node, op.reason};
    // The shard's leader carries out membership changes; with no leader known, the
    // first replica on a live node (it forwards or campaigns).
    p.actor = s.leader;
    if (p.actor == 0 || LivenessOf(p.actor, now, st.settings) == Liveness::kDead) {
      p.actor = 0;
      for (const auto& r : s.replicas) {
        if (!r.learner && LivenessOf(r.node, now, st.settings) == Liveness::kUp) {
          p.actor = r.node;
          break;
        }
      }
    }
    if (p.actor == 0) continue;
    p.deadline_ms = now + static_cast<uint64_t>(options_.operation_timeout.count());
    pending_[op.shard] = p;
  }
}

}  // namespace gojodb::controller
