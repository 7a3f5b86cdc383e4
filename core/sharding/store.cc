#include "core/sharding/store.h"

#include <algorithm>
#include <thread>

#include "core/mvcc/key_codec.h"
#include "internal/encoding.h"
#include "internal/failpoint.h"

namespace gojodb::sharding {
namespace {

using Steady = std::chrono::steady_clock;
using consensus::NodeId;
constexpr auto kMeta = storage::ColumnFamily::kMeta;
constexpr std::string_view kTombstonePrefix = "sT";

std::string TombstoneKey(uint64_t shard) {
  std::string k(kTombstonePrefix);
  mvcc::AppendUint64(&k, shard);
  return k;
}

std::chrono::milliseconds Remaining(Steady::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Steady::now());
  return std::max(left, std::chrono::milliseconds(0));
}

Status OutcomeStatus(const WriteOutcome& o) {
  if (!o.txn.ok()) return o.txn.ToStatus();
  switch (o.code) {
    case StatusCode::kOk:
      return Status::OK();
    case StatusCode::kFailedPrecondition:
      return Status::FailedPrecondition(o.message).WithDetail("current_version",
                                                              std::to_string(o.current_version));
    default:
      return Status(o.code, o.message);
  }
}

// Writes the Raft log a replica of shard `d` starts from, in place of whatever log the
// group had here: a snapshot at kInitialLogIndex, committed, whose configuration is
// d's replicas. `prior` is a term and vote the node may have given the group already.
Status WriteInitialLog(storage::Engine* engine, const ShardRecord& d,
                       const consensus::HardState& prior) {
  RETURN_IF_ERROR(replication::RaftLogStore::Destroy(engine, d.id));
  ASSIGN_OR_RETURN(auto log, replication::RaftLogStore::Open(engine, d.id));
  consensus::Snapshot snap;
  snap.metadata.index = consensus::LogIndex(kInitialLogIndex);
  snap.metadata.term = consensus::Term(kInitialLogIndex);
  for (const auto& r : d.replicas) {
    (r.learner ? snap.metadata.conf_state.learners : snap.metadata.conf_state.voters)
        .push_back(NodeId(r.node));
  }
  consensus::HardState hs;
  hs.term = std::max(prior.term, consensus::Term(kInitialLogIndex));
  if (prior.term == hs.term) hs.vote = prior.vote;
  hs.commit = consensus::LogIndex(kInitialLogIndex);
  storage::WriteBatch b;
  RETURN_IF_ERROR(log->StageSnapshot(snap, &b));
  log->StageHardState(hs, &b);
  Status w = engine->Write({.sync = true}, b);
  if (!w.ok()) {
    log->DiscardStaged();
    return w;
  }
  return log->OnDurable();
}

}  // namespace

Status NotLeaderError(uint64_t shard, uint64_t leader) {
  return Status::Unavailable("this node does not lead shard " + std::to_string(shard))
      .WithDetail("reason", std::string(kReasonNotLeader))
      .WithDetail("leader", std::to_string(leader));
}

Status EpochNotMatchError(const ShardRecord& current, const std::optional<ShardRecord>& holder) {
  Status s =
      Status::Unavailable("shard " + std::to_string(current.id) + " has changed (now version " +
                          std::to_string(current.epoch.version) + ")")
          .WithDetail("reason", std::string(kReasonEpochNotMatch))
          .WithDetail("descriptor", Base64Encode(EncodeDescriptor(current)));
  if (holder) s = s.WithDetail("new_descriptor", Base64Encode(EncodeDescriptor(*holder)));
  return s;
}

Status ShardNotFoundError(uint64_t shard) {
  return Status::Unavailable("shard " + std::to_string(shard) + " is not on this node")
      .WithDetail("reason", std::string(kReasonShardNotFound));
}

std::string ReasonOf(const Status& s) {
  for (const auto& [k, v] : s.details()) {
    if (k == "reason") return v;
  }
  return "";
}

Result<std::unique_ptr<Store>> Store::Open(StoreOptions options, storage::Engine* engine,
                                           mvcc::TimestampOracle* tso, Clock* clock,
                                           GroupTransports* transports) {
  if (options.node_id == 0) return Status::InvalidArgument("a store needs a node id");
  std::unique_ptr<Store> store(new Store(options, engine, tso, clock, transports));
  for (int i = 0; i < std::max(1, options.loops); ++i) {
    store->loops_.push_back(std::make_unique<replication::RaftLoop>(engine, options.tick));
  }
  // Tombstones, then every recorded replica.
  storage::ReadOptions ro;
  ro.lower_bound = std::string(kTombstonePrefix);
  ro.upper_bound = mvcc::PrefixSuccessor(kTombstonePrefix);
  auto it = engine->NewIterator(ro, kMeta);
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (it->key().size() == kTombstonePrefix.size() + 8) {
      store->removed_.insert(mvcc::ReadUint64(it->key().substr(kTombstonePrefix.size())));
    }
  }
  RETURN_IF_ERROR(it->status());
  // Dropped ranges whose compaction a stop or a crash cut short: queued again. (A
  // record this binary cannot read is only a hint lost, counted as an error: the rows
  // are deleted, and RocksDB's own compactions reclaim their space.)
  ro.lower_bound = std::string(kDroppedRangePrefix);
  ro.upper_bound = mvcc::PrefixSuccessor(kDroppedRangePrefix);
  it = engine->NewIterator(ro, kMeta);
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    auto range = DecodeDroppedRangeKey(it->key());
    std::lock_guard lock(store->bg_mu_);
    if (!range.ok()) {
      store->dropped_range_errors_.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    store->dropped_ranges_.push_back(std::move(*range));
    store->dropped_ranges_pending_.fetch_add(1, std::memory_order_relaxed);
  }
  RETURN_IF_ERROR(it->status());
  std::vector<uint64_t> ids;
  ro.lower_bound = std::string(kDescriptorPrefix);
  ro.upper_bound = mvcc::PrefixSuccessor(kDescriptorPrefix);
  it = engine->NewIterator(ro, kMeta);
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (it->key().size() != kDescriptorPrefix.size() + 8) {
      return Status::Corruption("malformed shard descriptor key");
    }
    ids.push_back(mvcc::ReadUint64(it->key().substr(kDescriptorPrefix.size())));
  }
  RETURN_IF_ERROR(it->status());
  it.reset();
  for (uint64_t id : ids) {
    ASSIGN_OR_RETURN(auto machine, ShardMachine::Load(engine, id));
    const bool join = !Initialized(machine->descriptor());
    auto r = store->StartReplica(std::move(machine), join);
    if (!r.ok()) return r.status().WithContext("shard " + std::to_string(id));
    store->replicas_[id] = *r;
  }
  store->split_bytes_ = options.split_bytes;
  store->FoundChildren();
  store->background_ = std::thread([s = store.get()] { s->BackgroundLoop(); });
  store->compactor_ = std::thread([s = store.get()] { s->CompactLoop(); });
  return store;
}

Store::Store(StoreOptions options, storage::Engine* engine, mvcc::TimestampOracle* tso,
             Clock* clock, GroupTransports* transports)
    : options_(options), engine_(engine), tso_(tso), clock_(clock), transports_(transports) {}

Store::~Store() {
  compaction_cancel_ = true;
  {
    std::lock_guard lock(bg_mu_);
    stopping_ = true;
  }
  bg_cv_.notify_all();
  if (background_.joinable()) background_.join();
  if (compactor_.joinable()) compactor_.join();
  std::map<uint64_t, std::shared_ptr<Replica>> replicas;
  {
    std::unique_lock lock(mu_);
    replicas.swap(replicas_);
  }
  for (auto& [id, r] : replicas) r->node.reset();  // leaves the loops
  loops_.clear();
}

Result<std::shared_ptr<Store::Replica>> Store::StartReplica(std::unique_ptr<ShardMachine> machine,
                                                            bool join) {
  auto r = std::make_shared<Replica>();
  const ShardRecord d = machine->descriptor();
  r->transport = transports_->ForGroup(d.id);
  replication::RaftNodeOptions o;
  o.id = NodeId(options_.node_id);
  o.group = d.id;
  for (const auto& rep : d.replicas) {
    if (!rep.learner) o.initial_voters.push_back(NodeId(rep.node));
  }
  o.tick_interval = options_.tick;
  o.election_tick = options_.election_tick;
  o.random_seed = options_.node_id * 1000003 + d.id;
  o.max_size_per_msg = options_.max_size_per_msg;
  o.lease_reads = options_.lease_reads;
  o.join = join;
  o.snapshot_entries = options_.snapshot_entries;
  o.retain_entries = options_.retain_entries;
  o.snapshot_bytes = options_.snapshot_bytes;
  o.retain_bytes = options_.retain_bytes;
  o.state_in_log_engine = true;  // ShardMachine writes to engine_, as the loops do
  machine->SetSplitListener([this](uint64_t child) {
    {
      std::unique_lock lock(mu_);
      unfounded_children_.insert(child);
    }
    std::lock_guard lock(bg_mu_);
    children_pending_ = true;
    bg_cv_.notify_all();
  });
  machine->SetRowsDroppedListener([this](std::string lo, std::string hi) {
    std::lock_guard lock(bg_mu_);
    dropped_ranges_.emplace_back(std::move(lo), std::move(hi));
    dropped_ranges_pending_.fetch_add(1, std::memory_order_relaxed);
    bg_cv_.notify_all();
  });
  replication::RaftLoop* loop = loops_[d.id % loops_.size()].get();
  ASSIGN_OR_RETURN(r->node,
                   replication::RaftNode::Start(o, loop, machine.get(), r->transport.get()));
  r->machine = std::move(machine);
  return r;
}

std::shared_ptr<Store::Replica> Store::Find(uint64_t shard) const {
  std::shared_lock lock(mu_);
  auto it = replicas_.find(shard);
  return it == replicas_.end() ? nullptr : it->second;
}

Status Store::CreateReplica(const ShardRecord& d) {
  if (d.id == 0) return Status::InvalidArgument("shard id 0 is reserved");
  if (!Initialized(d)) return Status::InvalidArgument("a new shard needs an epoch");
  const bool member = std::any_of(d.replicas.begin(), d.replicas.end(), [&](const auto& r) {
    return r.node == options_.node_id && !r.learner;
  });
  if (!member) {
    return Status::InvalidArgument("node " + std::to_string(options_.node_id) +
                                   " is not a voter of shard " + std::to_string(d.id));
  }
  std::lock_guard create(create_mu_);
  {
    std::shared_lock lock(mu_);
    if (replicas_.count(d.id)) return Status::OK();
    if (removed_.count(d.id)) {
      return Status::FailedPrecondition("shard " + std::to_string(d.id) +
                                        " was removed from this node");
    }
  }
  ShardRecord desc = d;
  desc.leader = 0;
  // The log first, then the machine: a replica is loaded at a restart by its machine's
  // records, and a log left without them (a crash between the two) is written again.
  RETURN_IF_ERROR(WriteInitialLog(engine_, desc, consensus::HardState{}));
  ASSIGN_OR_RETURN(auto machine, ShardMachine::Create(engine_, desc, kInitialLogIndex));
  ASSIGN_OR_RETURN(auto r, StartReplica(std::move(machine), /*join=*/false));
  std::unique_lock lock(mu_);
  replicas_[d.id] = std::move(r);
  return Status::OK();
}

bool Store::SnapshotOverlapsAnother(uint64_t group, const consensus::Snapshot& snap) {
  auto d = SnapshotDescriptor(snap.data);
  if (!d.ok() || !Initialized(*d)) return false;  // nothing to install over others' rows
  // No founding meanwhile: a child leaves the records below only to join the replicas.
  std::lock_guard create(create_mu_);
  {
    std::shared_lock lock(mu_);
    for (const auto& [id, r] : replicas_) {
      if (id == group) continue;
      const ShardRecord other = r->machine->descriptor();
      if (Initialized(other) && RangesOverlap(*d, other)) return true;
    }
  }
  // A split applied here whose new shard is not founded yet: its founding will write
  // that range's rows (as of the split), so it holds the range too. Read after the
  // replicas: a parent's range shrinks only once its split's record is written.
  bool complete = true;
  for (const auto& c : RecordedChildren(&complete)) {
    if (c.descriptor.id != group && RangesOverlap(*d, c.descriptor)) return true;
  }
  return !complete;  // a record unread: hold back rather than risk its rows
}

void Store::Deliver(uint64_t group, consensus::Message m) {
  if (m.type == consensus::MessageType::kSnap && m.snapshot &&
      SnapshotOverlapsAnother(group, *m.snapshot)) {
    // Another replica here still holds part of the range: a parent that has not applied
    // the split yet. Installed now, the snapshot's rows would be there when the parent
    // replays the writes that made them, which it would then refuse as conflicts and
    // so diverge from its group. Dropped: the leader sends it again, and by then the
    // parent has split (founding this replica from its own rows) or been removed.
    snapshots_deferred_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (auto r = Find(group)) {
    r->node->Deliver(std::move(m));
    return;
  }
  if (group == 0 || m.to != NodeId(options_.node_id)) return;
  {
    std::shared_lock lock(mu_);
    if (removed_.count(group)) return;  // a removed replica never comes back
    // A split applied here whose new group is not founded yet: it will be in a moment,
    // with the data; creating an empty member now would only have to be undone.
    if (unfounded_children_.count(group)) return;
  }
  // A member being added: only a leader's append, heartbeat or snapshot creates it.
  using consensus::MessageType;
  if (m.type != MessageType::kApp && m.type != MessageType::kHeartbeat &&
      m.type != MessageType::kSnap) {
    return;
  }
  {
    std::lock_guard create(create_mu_);
    {
      // Again under create_mu_: a removal or a split may have landed meanwhile.
      std::shared_lock lock(mu_);
      if (removed_.count(group) || unfounded_children_.count(group)) return;
    }
    if (!Find(group)) {
      auto machine = ShardMachine::Create(engine_, Uninitialized(group));
      if (!machine.ok()) return;  // the leader retries
      auto r = StartReplica(std::move(*machine), /*join=*/true);
      if (!r.ok()) return;
      std::unique_lock lock(mu_);
      replicas_[group] = std::move(*r);
    }
  }
  if (auto r = Find(group)) r->node->Deliver(std::move(m));
}

void Store::ReportSnapshot(uint64_t group, NodeId to, bool ok) {
  if (auto r = Find(group)) r->node->ReportSnapshot(to, ok);
}

Status Store::DestroyReplica(uint64_t shard) {
  std::lock_guard create(create_mu_);
  std::shared_ptr<Replica> r;
  {
    std::unique_lock lock(mu_);
    auto it = replicas_.find(shard);
    if (it == replicas_.end()) return Status::OK();
    r = it->second;
    replicas_.erase(it);
    removed_.insert(shard);
  }
  r->node->Stop();
  storage::WriteBatch b;
  b.Put(kMeta, TombstoneKey(shard), "");
  RETURN_IF_ERROR(engine_->Write({.sync = true}, b));
  std::vector<ShardRecord> others;
  {
    std::shared_lock lock(mu_);
    for (const auto& [id, o] : replicas_) others.push_back(o->machine->descriptor());
  }
  RETURN_IF_ERROR(ShardMachine::Destroy(engine_, r->machine->descriptor(), others));
  return replication::RaftLogStore::Destroy(engine_, shard);
}

Status Store::FailedReplicaError(uint64_t shard, const Status& why) const {
  return Status::Unavailable("the replica of shard " + std::to_string(shard) + " on node " +
                             std::to_string(options_.node_id) + " has stopped: " + why.message())
      .WithDetail("reason", std::string(kReasonNotLeader))
      .WithDetail("leader", "0");
}

Status Store::EpochNotMatch(const ShardRecord& current, std::string_view row_key) const {
  std::optional<ShardRecord> holder;
  if (!row_key.empty() && !InRange(current, row_key)) {
    std::shared_lock lock(mu_);
    for (const auto& [id, r] : replicas_) {
      ShardRecord d = r->machine->descriptor();
      if (id != current.id && Initialized(d) && InRange(d, row_key)) {
        holder = std::move(d);
        break;
      }
    }
  }
  return EpochNotMatchError(current, holder);
}

Result<std::shared_ptr<Store::Replica>> Store::Check(const Route& route, bool leader_only,
                                                     std::string_view row_key) const {
  auto r = Find(route.shard);
  if (!r) return ShardNotFoundError(route.shard);
  if (Status health = r->node->Health(); !health.ok()) {
    return FailedReplicaError(route.shard, health);
  }
  const ShardRecord d = r->machine->descriptor();
  if (!Initialized(d)) return ShardNotFoundError(route.shard);
  if (route.epoch.version != d.epoch.version) return EpochNotMatch(d, row_key);
  if (leader_only) {
    const NodeId leader = r->node->Leader();
    if (leader != NodeId(options_.node_id)) return NotLeaderError(route.shard, leader.value());
  }
  return r;
}

Result<WriteOutcome> Store::ProposeCommand(Replica& r, const std::string& data,
                                           Steady::time_point deadline) {
  std::string result;
  auto ticket = r.node->Submit(data);
  RETURN_IF_ERROR(r.node->Wait(ticket, Remaining(deadline), &result));
  return DecodeOutcome(result);
}

Status Store::EnsureDescribed(Replica& r, Steady::time_point deadline) {
  if (r.machine->described()) return Status::OK();
  ASSIGN_OR_RETURN(auto out,
                   ProposeCommand(r, EncodeDescribeCommand(r.machine->descriptor()), deadline));
  return OutcomeStatus(out);
}

Result<WriteOutcome> Store::Write(const Route& route, WriteCommand w, Steady::time_point deadline) {
  ASSIGN_OR_RETURN(auto r, PrepareWrite(route, w, deadline));
  ASSIGN_OR_RETURN(auto ticket, SubmitWrite(*r, route.shard, w));
  return FinishWrite(*r, route.shard, w, std::move(ticket), deadline);
}

std::vector<Result<WriteOutcome>> Store::WriteAll(std::vector<RoutedWrite> writes) {
  std::vector<Result<WriteOutcome>> out;
  out.reserve(writes.size());
  struct Submitted {
    std::shared_ptr<Replica> replica;
    replication::RaftNode::Ticket ticket;
  };
  std::vector<std::optional<Submitted>> submitted(writes.size());
  for (size_t i = 0; i < writes.size(); ++i) {
    auto& x = writes[i];
    auto r = PrepareWrite(x.route, x.command, x.deadline);
    if (!r.ok()) {
      out.emplace_back(r.status());
      continue;
    }
    auto ticket = SubmitWrite(**r, x.route.shard, x.command);
    if (!ticket.ok()) {
      out.emplace_back(ticket.status());
      continue;
    }
    submitted[i] = Submitted{std::move(*r), std::move(*ticket)};
    out.emplace_back(Status::Internal("not waited for"));  // replaced below
  }
  for (size_t i = 0; i < writes.size(); ++i) {
    if (!submitted[i]) continue;
    auto& x = writes[i];
    out[i] = FinishWrite(*submitted[i]->replica, x.route.shard, x.command,
                         std::move(submitted[i]->ticket), x.deadline);
  }
  return out;
}

Result<std::shared_ptr<Store::Replica>> Store::PrepareWrite(const Route& route, WriteCommand& w,
                                                            Steady::time_point deadline) {
  if (w.mutations.empty()) return Status::InvalidArgument("a write needs at least one mutation");
  ASSIGN_OR_RETURN(auto r, Check(route, /*leader_only=*/true, w.mutations[0].row_key));
  const ShardRecord d = r->machine->descriptor();
  for (const auto& m : w.mutations) {
    if (!InRange(d, m.row_key)) return EpochNotMatch(d, m.row_key);
  }
  RETURN_IF_ERROR(EnsureDescribed(*r, deadline));
  w.created_ms = clock_->NowMillis();
  return r;
}

Result<replication::RaftNode::Ticket> Store::SubmitWrite(Replica& r, uint64_t shard,
                                                         WriteCommand& w) {
  replication::RaftNode::Ticket ticket;
  {
    std::lock_guard order(r.order_mu);
    ASSIGN_OR_RETURN(const uint64_t term, SyncFloor(r, shard));
    ASSIGN_OR_RETURN(w.ts, tso_->Next());
    if (const uint64_t floor = std::max({r.machine->max_ts(), w.start_ts, r.read_floor});
        w.ts <= floor) {
      // Overtaken already (a snapshot read, a fence, or a newer leader's writes), or not
      // above the transaction's start: take a timestamp above them all.
      RETURN_IF_ERROR(tso_->AdvancePast(floor));
      ASSIGN_OR_RETURN(w.ts, tso_->Next());
    }
    if (w.commit_below != 0 && w.ts >= w.commit_below) {
      // The router's collection record may be out of date at this timestamp (an index
      // added since would miss the row): it rereads the record and plans again.
      return Status::Aborted("the collection's schema lease ended before the write committed")
          .WithDetail("reason", "SCHEMA_LEASE");
    }
    // Proposed only in this term: in a later one this leader's floor may be behind reads
    // another leader served meanwhile.
    ticket = r.node->Submit(EncodeWriteCommand(w), term);
  }
  if (!ticket.status.ok()) {
    // Refused before it was queued: nothing can apply.
    if (Status health = r.node->Health(); !health.ok()) return FailedReplicaError(shard, health);
    return NotLeaderError(shard, r.node->Leader().value());
  }
  failpoint::Hit("store.write_submitted", shard);  // queued, at its timestamp
  return ticket;
}

Result<WriteOutcome> Store::FinishWrite(Replica& r, uint64_t shard, WriteCommand& w,
                                        replication::RaftNode::Ticket ticket,
                                        Steady::time_point deadline) {
  for (;;) {
    std::string result;
    Status s = r.node->Wait(ticket, Remaining(deadline), &result);
    if (!s.ok()) {
      // The loop found this node no leader and proposed nothing: try elsewhere.
      if (replication::RaftNode::NotProposed(s)) {
        return NotLeaderError(shard, r.node->Leader().value());
      }
      // Queued, so it may still commit (under this leader or the next): the outcome is
      // unknown, which is not the same as "not the leader, try elsewhere".
      return Status::Unavailable("the write's outcome is unknown: " + s.message());
    }
    ASSIGN_OR_RETURN(WriteOutcome out, DecodeOutcome(result));
    if (out.code == StatusCode::kAborted && out.txn.ok()) {
      // Our timestamp was overtaken (a fence, or a newer leader's writes): nothing
      // applied; take a timestamp above the shard's and go again.
      RETURN_IF_ERROR(tso_->AdvancePast(out.max_ts));
      if (Steady::now() >= deadline) {
        return Status::DeadlineExceeded("write did not find a commit timestamp in time");
      }
      ASSIGN_OR_RETURN(ticket, SubmitWrite(r, shard, w));
      continue;
    }
    if (out.code == StatusCode::kOutOfRange) {
      return EpochNotMatch(r.machine->descriptor(), w.mutations[0].row_key);
    }
    RETURN_IF_ERROR(OutcomeStatus(out));
    return out;
  }
}

Result<uint64_t> Store::SyncFloor(Replica& r, uint64_t shard) {
  const uint64_t term = r.node->LeaderTerm();
  if (term == 0) return NotLeaderError(shard, r.node->Leader().value());
  if (term != r.floor_term) {
    // A read an earlier leader served at T was served before this term began, and T was
    // handed out before that read: a timestamp handed out now is above T.
    ASSIGN_OR_RETURN(const uint64_t fresh, tso_->NextFresh());
    r.read_floor = std::max(r.read_floor, fresh);
    r.floor_term = term;
  }
  return term;
}

Status Store::PrepareRead(Replica& r, kv::Consistency c, uint64_t at, Steady::time_point deadline) {
  if (c == kv::Consistency::kStale) {
    // Any replica, as of what it has applied; a snapshot at `at` needs max_ts >= at.
    if (at != mvcc::kMaxTimestamp && r.machine->max_ts() < at) {
      return NotLeaderError(r.machine->id(), r.node->Leader().value());
    }
    return Status::OK();
  }
  // A barrier or wait that found this member not leading: NOT_LEADER, for the router.
  auto led = [&](const Status& s) {
    if (s.code() != StatusCode::kUnavailable) return s;
    return NotLeaderError(r.machine->id(), r.node->Leader().value());
  };
  RETURN_IF_ERROR(led(r.node->ReadBarrier(Remaining(deadline))));
  if (at != mvcc::kMaxTimestamp && r.machine->max_ts() < at) {
    // Leading in `term` from here on (a later leadership is a later term).
    const uint64_t term = r.node->LeaderTerm();
    bool covered;  // by a floor already raised from a checked or fresh timestamp
    {
      std::lock_guard order(r.order_mu);
      // Settled: the writes in flight now all commit above `at`. A bulk load's later
      // parts read at the snapshot of its first while the parts before them commit.
      if (term != 0 && r.settled_term == term && at <= r.settled_floor) return Status::OK();
      covered = at <= r.read_floor;
    }
    // A floor above every timestamp handed out would push the shard's writes ahead of the
    // oracle: a read from the future is refused instead.
    ASSIGN_OR_RETURN(uint64_t now, covered ? Result<uint64_t>(at) : tso_->Next());
    if (now < at) {
      // `now` may come from a batch taken before `at` was handed out: ask the oracle's
      // source for one handed out after this read arrived (so after `at`, if `at` is
      // a real timestamp).
      ASSIGN_OR_RETURN(now, tso_->NextFresh());
      if (now < at) {
        return Status::InvalidArgument("snapshot " + std::to_string(at) +
                                       " is in the future (the newest timestamp is " +
                                       std::to_string(now) + ")");
      }
    }
    // The read floor (decision 28): writes this leader submits from now on commit above
    // `at`; wait for those submitted before to apply. No Raft round of its own.
    {
      std::lock_guard order(r.order_mu);
      r.read_floor = std::max(r.read_floor, at);
    }
    RETURN_IF_ERROR(led(r.node->WaitForProposed(Remaining(deadline))));
    if (term != 0 && r.node->LeaderTerm() == term) {
      // Leading throughout: no write at or below `at` can be submitted in this term now.
      std::lock_guard order(r.order_mu);
      if (r.settled_term != term) {
        r.settled_term = term;
        r.settled_floor = 0;
      }
      r.settled_floor = std::max(r.settled_floor, at);
    }
  }
  return Status::OK();
}

Result<std::optional<mvcc::VersionedValue>> Store::Get(const Route& route, std::string_view row_key,
                                                       kv::Consistency consistency, uint64_t at,
                                                       Steady::time_point deadline,
                                                       const std::vector<uint64_t>& resolved) {
  const bool any_replica = consistency == kv::Consistency::kStale;
  ASSIGN_OR_RETURN(auto r, Check(route, !any_replica, row_key));
  if (at == 0) at = mvcc::kMaxTimestamp;
  RETURN_IF_ERROR(PrepareRead(*r, consistency, at, deadline));
  RETURN_IF_ERROR(CheckGcFence(*r, at));
  // After the barrier: the range may have changed while we waited.
  const ShardRecord d = r->machine->descriptor();
  if (d.epoch.version != route.epoch.version || !InRange(d, row_key)) {
    return EpochNotMatch(d, row_key);
  }
  // The lock first: a commit removes it in the batch that writes the version, so a
  // read that finds no lock finds the version of any commit that could hide one at `at`.
  txn::TxnRows locks(engine_);
  ASSIGN_OR_RETURN(auto blocker,
                   locks.ReadBlocker(row_key, {at, resolved, at == mvcc::kMaxTimestamp}));
  if (blocker) return txn::LockedError(row_key, *blocker);
  mvcc::MvccReader reader(engine_, nullptr);
  auto value = reader.Get(row_key, at);
  // Again after reading: a fence raised meanwhile may have let compaction collect
  // versions the read needed.
  RETURN_IF_ERROR(CheckGcFence(*r, at));
  return value;
}

Result<std::optional<Store::ScanRange>> Store::PrepareScan(const Route& route, mvcc::ScanOptions& o,
                                                           kv::Consistency consistency,
                                                           Steady::time_point deadline) {
  const bool any_replica = consistency == kv::Consistency::kStale;
  if (!any_replica && o.read_ts == mvcc::kMaxTimestamp) {
    return Status::InvalidArgument("a linearizable or snapshot scan needs a read timestamp");
  }
  ASSIGN_OR_RETURN(auto r, Check(route, !any_replica));
  RETURN_IF_ERROR(PrepareRead(*r, consistency, o.read_ts, deadline));
  RETURN_IF_ERROR(CheckGcFence(*r, o.read_ts));
  const ShardRecord d = r->machine->descriptor();
  if (d.epoch.version != route.epoch.version) return EpochNotMatchError(d);
  // Clip [start, end) of the collection to the shard's range of row keys.
  const std::string prefix = mvcc::CollectionPrefix(o.tenant, o.collection);
  std::string lo = mvcc::EncodeRowKey(o.tenant, o.collection, o.start);
  std::string hi = o.end.empty() ? mvcc::PrefixSuccessor(prefix)
                                 : mvcc::EncodeRowKey(o.tenant, o.collection, o.end);
  if (lo < d.start_key) lo = d.start_key;
  if (!d.end_key.empty() && d.end_key < hi) hi = d.end_key;
  if (lo >= hi) return std::optional<ScanRange>();
  // The reader takes user keys; a clipped bound that falls inside the collection is
  // mapped back to the first user key at or after it.
  auto user_bound = [&](const std::string& row, bool is_end) -> Result<std::string> {
    if (row <= prefix) return std::string();
    if (is_end && row >= mvcc::PrefixSuccessor(prefix)) return std::string();
    std::string user;
    auto n = mvcc::DecodeComparableBytes(std::string_view(row).substr(prefix.size()), &user);
    if (!n.ok()) return Status::Internal("shard boundary is not a row key");
    return user;
  };
  // The rows, then the locks of the part of the range the answer covers, both at one
  // snapshot of the engine: a commit removes its lock in the batch that writes its
  // version, so either the lock or the version is seen. (Only the covered part: a
  // page's lock check then costs what the page reads, not what the range holds,
  // deleted locks included.)
  ASSIGN_OR_RETURN(o.start, user_bound(lo, false));
  ASSIGN_OR_RETURN(o.end, user_bound(hi, true));
  return std::optional<ScanRange>(ScanRange{std::move(r), std::move(lo), std::move(hi)});
}

Result<mvcc::ScanOutput> Store::Scan(const Route& route, mvcc::ScanOptions o,
                                     kv::Consistency consistency, Steady::time_point deadline,
                                     const std::vector<uint64_t>& resolved) {
  ASSIGN_OR_RETURN(auto range, PrepareScan(route, o, consistency, deadline));
  if (!range) return mvcc::ScanOutput{};
  auto& [r, lo, hi] = *range;
  const auto snapshot = engine_->GetSnapshot();
  mvcc::MvccReader reader(engine_, snapshot.get());
  ASSIGN_OR_RETURN(auto rows, reader.Scan(o));
  if (rows.next) {
    // Forward, up to the first key not returned; reverse, from the last one returned.
    const std::string cut = mvcc::EncodeRowKey(o.tenant, o.collection, *rows.next);
    (o.reverse ? lo : hi) = cut;
  }
  {
    txn::TxnRows locks(engine_, snapshot.get());
    ASSIGN_OR_RETURN(
        auto blockers,
        locks.ReadBlockers(lo, hi, {o.read_ts, resolved, o.read_ts == mvcc::kMaxTimestamp}, 1));
    if (!blockers.empty()) return txn::LockedError(blockers[0].first, blockers[0].second);
  }
  RETURN_IF_ERROR(CheckGcFence(*r, o.read_ts));  // as in Get
  return rows;
}

Result<std::optional<std::string>> Store::ScanEach(const Route& route, mvcc::ScanOptions o,
                                                   Steady::time_point deadline,
                                                   const std::vector<uint64_t>& resolved,
                                                   const RowVisitor& visit) {
  if (o.limit == 0) return Status::InvalidArgument("a pushed-down scan needs a row limit");
  const size_t budget = o.limit;
  ASSIGN_OR_RETURN(auto range, PrepareScan(route, o, kv::Consistency::kSnapshot, deadline));
  if (!range) return std::optional<std::string>();
  auto& [r, lo, hi] = *range;
  // As Scan: the rows, then the locks of the part visited, at one engine snapshot.
  const auto snapshot = engine_->GetSnapshot();
  mvcc::MvccReader reader(engine_, snapshot.get());
  constexpr size_t kPage = 512;
  size_t seen = 0;
  std::optional<std::string> next;
  for (;;) {
    o.limit = std::min(kPage, budget - seen);
    ASSIGN_OR_RETURN(auto rows, reader.Scan(o));
    bool stopped = false;
    for (const auto& item : rows.items) {
      ++seen;
      ASSIGN_OR_RETURN(bool more, visit(item));
      if (!more) {
        stopped = true;
        // Rows after this one (reverse: before it) are left for the next call.
        next = o.reverse ? item.key : item.key + std::string(1, '\0');
        break;
      }
    }
    if (stopped || !rows.next) break;
    if (seen >= budget) {
      next = std::move(rows.next);
      break;
    }
    (o.reverse ? o.end : o.start) = std::move(*rows.next);
  }
  if (next) {
    const std::string bound = mvcc::EncodeRowKey(o.tenant, o.collection, *next);
    if (o.reverse) {
      lo = std::max(lo, bound);
    } else {
      hi = std::min(hi, bound);
    }
  }
  {
    txn::TxnRows locks(engine_, snapshot.get());
    ASSIGN_OR_RETURN(
        auto blockers,
        locks.ReadBlockers(lo, hi, {o.read_ts, resolved, o.read_ts == mvcc::kMaxTimestamp}, 1));
    if (!blockers.empty()) return txn::LockedError(blockers[0].first, blockers[0].second);
  }
  RETURN_IF_ERROR(CheckGcFence(*r, o.read_ts));
  return next;
}

Result<size_t> Store::GetEach(const Route& route, const std::vector<std::string>& row_keys,
                              uint64_t read_ts, Steady::time_point deadline,
                              const std::vector<uint64_t>& resolved, const VersionVisitor& visit) {
  if (row_keys.empty()) return size_t{0};
  if (read_ts == 0 || read_ts == mvcc::kMaxTimestamp) {
    return Status::InvalidArgument("a pushed-down read needs a read timestamp");
  }
  ASSIGN_OR_RETURN(auto r, Check(route, /*leader_only=*/true, row_keys[0]));
  RETURN_IF_ERROR(PrepareRead(*r, kv::Consistency::kSnapshot, read_ts, deadline));
  RETURN_IF_ERROR(CheckGcFence(*r, read_ts));
  // After the barrier: the range may have changed while we waited.
  const ShardRecord d = r->machine->descriptor();
  if (d.epoch.version != route.epoch.version) return EpochNotMatchError(d);
  for (const auto& row : row_keys) {
    if (!InRange(d, row)) return EpochNotMatch(d, row);
  }
  // Each row's lock, then its version, at one snapshot (as Get, which reads the lock
  // first for the same reason); the versions through one iterator.
  const auto snapshot = engine_->GetSnapshot();
  txn::TxnRows locks(engine_, snapshot.get());
  mvcc::MvccReader reader(engine_, snapshot.get());
  // Seldom a lock among the rows of a read: one seek over their span answers for all of
  // them when it finds none, and each row's lock is looked up only when it finds some.
  // (For one or two rows, their own lookups cost less than the seek's iterator.)
  const auto [lo, hi] = std::minmax_element(row_keys.begin(), row_keys.end());
  const bool any_locks = row_keys.size() <= 2 || locks.MayHoldLocks(*lo, *hi);
  size_t visited = 0;
  RETURN_IF_ERROR(reader.GetEach(
      row_keys, read_ts, [&](size_t i, std::optional<mvcc::VersionedValue> value) -> Result<bool> {
        const std::string& row = row_keys[i];
        if (any_locks) {
          ASSIGN_OR_RETURN(auto blocker, locks.ReadBlocker(row, {read_ts, resolved, false}));
          if (blocker) return txn::LockedError(row, *blocker);
        }
        ++visited;
        return visit(row, value);
      }));
  RETURN_IF_ERROR(CheckGcFence(*r, read_ts));
  return visited;
}

Status Store::CheckGcFence(const Replica& r, uint64_t at) const {
  const uint64_t fence = std::max(r.machine->gc_fence(), gc_safe_point());
  if (at == mvcc::kMaxTimestamp || at >= fence) return Status::OK();
  return Status::OutOfRange("snapshot " + std::to_string(at) + " is older than the GC safe point " +
                            std::to_string(fence))
      .WithDetail("reason", "TOO_OLD")
      .WithDetail("gc_fence", std::to_string(fence));
}

void Store::AdvanceGcFence(uint64_t fence, Steady::time_point deadline) {
  for (const auto& r : LedReplicas()) {
    if (r->machine->gc_fence() >= fence || !Initialized(r->machine->descriptor())) continue;
    auto leader = LeaderReplica(r->machine->id(), deadline);
    if (!leader.ok()) continue;
    auto out = ProposeCommand(**leader, EncodeGcFenceCommand(fence), deadline);
    if (!out.ok()) continue;  // not leading any more, or slow: next heartbeat
  }
}

Result<std::vector<txn::LockedRow>> Store::LocksBelowFence(uint64_t shard, size_t limit) {
  auto r = Find(shard);
  if (!r) return ShardNotFoundError(shard);
  const ShardRecord d = r->machine->descriptor();
  if (!Initialized(d)) return std::vector<txn::LockedRow>{};
  auto [lo, hi] = RowRange(d);
  txn::TxnRows rows(engine_);
  return rows.LocksBelow(lo, hi, r->machine->gc_fence(), limit);
}

std::vector<Store::GcResolved> Store::ResolvedGcFences() const {
  std::vector<GcResolved> out;
  for (const auto& r : LedReplicas()) {
    // The fence before the scan: a lock the scan misses was resolved below this fence.
    const uint64_t fence = r->machine->gc_fence();
    const ShardRecord d = r->machine->descriptor();
    if (fence == 0 || !Initialized(d)) continue;
    auto [lo, hi] = RowRange(d);
    txn::TxnRows rows(engine_);
    auto locks = rows.LocksBelow(lo, hi, fence, 1);
    if (locks.ok() && locks->empty()) out.push_back({d.id, d.epoch.version, fence});
  }
  return out;
}

void Store::ReclaimRows(const std::vector<ReclaimRange>& ranges, Steady::time_point deadline) {
  std::set<uint32_t> listed;
  for (const auto& x : ranges) listed.insert(x.id);
  {
    std::lock_guard lock(reclaim_mu_);
    std::erase_if(reclaimed_, [&](const Reclaimed& r) { return listed.count(r.id) == 0; });
  }
  if (ranges.empty()) return;
  for (const auto& r : LedReplicas()) {
    const ShardRecord d = r->machine->descriptor();
    if (!Initialized(d)) continue;
    const auto [lo, hi] = RowRange(d);
    for (const auto& x : ranges) {
      if (x.id == 0) continue;
      const std::string prefix = mvcc::CollectionPrefix(x.tenant, x.id);
      if (prefix >= hi || mvcc::PrefixSuccessor(prefix) <= lo) continue;  // not in this shard
      {
        std::lock_guard lock(reclaim_mu_);
        if (reclaimed_.count({d.id, d.epoch.version, x.id})) continue;
      }
      auto leader = LeaderReplica(d.id, deadline);
      if (!leader.ok()) break;
      auto out = ProposeCommand(**leader, EncodeDropRowsCommand(x.tenant, x.id), deadline);
      if (!out.ok() || out->code != StatusCode::kOk) break;  // not leading any more, or slow
      std::lock_guard lock(reclaim_mu_);
      reclaimed_.insert({d.id, out->current_version, x.id});
    }
  }
}

std::vector<Store::Reclaimed> Store::ReclaimedRows() const {
  std::lock_guard lock(reclaim_mu_);
  return {reclaimed_.begin(), reclaimed_.end()};
}

void Store::SetGcSafePoint(uint64_t safe_point) {
  if (!options_.gc_safe_point) return;
  uint64_t effective = safe_point;
  {
    std::shared_lock lock(mu_);
    for (const auto& [id, r] : replicas_) {
      if (Initialized(r->machine->descriptor())) {
        effective = std::min(effective, r->machine->gc_fence());
      }
    }
  }
  auto& sp = options_.gc_safe_point->ts;
  uint64_t cur = sp.load();
  while (effective > cur && !sp.compare_exchange_weak(cur, effective)) {
  }
}

Result<txn::TxnOutcome> Store::Txn(const Route& route, const std::string& command,
                                   std::string_view row, Steady::time_point deadline) {
  ASSIGN_OR_RETURN(auto r, Check(route, /*leader_only=*/true, row));
  const ShardRecord d = r->machine->descriptor();
  if (!InRange(d, row)) return EpochNotMatch(d, row);
  RETURN_IF_ERROR(EnsureDescribed(*r, deadline));
  replication::RaftNode::Ticket ticket;
  if (IsPrewriteCommand(command)) {
    // A prewrite's lock must commit above every snapshot read here (its min_commit_ts
    // comes from the shard's replicated max_ts): a Fence at the read floor goes first,
    // into the same log write.
    std::lock_guard order(r->order_mu);
    ASSIGN_OR_RETURN(const uint64_t term, SyncFloor(*r, route.shard));
    if (r->read_floor > r->machine->max_ts()) {
      auto fence = r->node->Submit(EncodeFenceCommand(r->read_floor), term);
      if (!fence.status.ok()) return NotLeaderError(route.shard, r->node->Leader().value());
    }
    ticket = r->node->Submit(command, term);
  } else {
    ticket = r->node->Submit(command);
  }
  if (!ticket.status.ok()) {
    if (Status health = r->node->Health(); !health.ok()) {
      return FailedReplicaError(route.shard, health);
    }
    return NotLeaderError(route.shard, r->node->Leader().value());
  }
  std::string result;
  if (Status s = r->node->Wait(ticket, Remaining(deadline), &result); !s.ok()) {
    if (replication::RaftNode::NotProposed(s)) {
      return NotLeaderError(route.shard, r->node->Leader().value());
    }
    // Queued: it may still apply. Every transaction command is idempotent, so the
    // caller retries it as it would a lost answer.
    return Status::Unavailable("the transaction command's outcome is unknown: " + s.message());
  }
  ASSIGN_OR_RETURN(WriteOutcome out, DecodeOutcome(result));
  if (out.code == StatusCode::kOutOfRange) return EpochNotMatch(r->machine->descriptor(), row);
  if (out.code != StatusCode::kOk) return Status(out.code, out.message);
  return std::move(out.txn);
}

Status Store::AddReplica(uint64_t shard, uint64_t node, std::chrono::milliseconds timeout) {
  const auto deadline = Steady::now() + timeout;
  auto r = Find(shard);
  if (!r) return ShardNotFoundError(shard);
  if (r->node->Leader() != NodeId(options_.node_id)) {
    return NotLeaderError(shard, r->node->Leader().value());
  }
  RETURN_IF_ERROR(EnsureDescribed(*r, deadline));
  auto has = [&](bool learner) {
    const auto d = r->machine->descriptor();
    return std::any_of(d.replicas.begin(), d.replicas.end(),
                       [&](const auto& x) { return x.node == node && x.learner == learner; });
  };
  using consensus::ConfChangeType;
  if (!has(true) && !has(false)) {
    consensus::ConfChange cc;
    cc.changes.push_back({ConfChangeType::kAddLearnerNode, NodeId(node)});
    RETURN_IF_ERROR(r->node->ProposeConfChange(cc, Remaining(deadline)));
  }
  if (has(false)) return Status::OK();
  // Wait until the learner has the log up to the leader's commit, then promote it.
  for (;;) {
    auto st = r->node->GetStatus();
    bool caught_up = false;
    for (const auto& p : st.progress) {
      if (p.id == NodeId(node) && p.match >= st.commit) caught_up = true;
    }
    if (caught_up) break;
    if (Steady::now() >= deadline) {
      return Status::DeadlineExceeded("node " + std::to_string(node) +
                                      " did not catch up in time; it stays a learner");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  consensus::ConfChange cc;
  cc.changes.push_back({ConfChangeType::kAddNode, NodeId(node)});
  return r->node->ProposeConfChange(cc, Remaining(deadline));
}

Status Store::RemoveReplica(uint64_t shard, uint64_t node, std::chrono::milliseconds timeout) {
  const auto deadline = Steady::now() + timeout;
  auto r = Find(shard);
  if (!r) return ShardNotFoundError(shard);
  if (r->node->Leader() != NodeId(options_.node_id)) {
    return NotLeaderError(shard, r->node->Leader().value());
  }
  const auto d = r->machine->descriptor();
  if (std::none_of(d.replicas.begin(), d.replicas.end(),
                   [&](const auto& x) { return x.node == node; })) {
    return Status::OK();
  }
  if (node == options_.node_id) {
    // A leader does not remove itself: it hands leadership to another voter, whose
    // leader then carries out the removal.
    for (const auto& x : d.replicas) {
      if (!x.learner && x.node != node) return TransferLeader(shard, x.node);
    }
    return Status::FailedPrecondition("cannot remove the only voter of shard " +
                                      std::to_string(shard));
  }
  consensus::ConfChange cc;
  cc.changes.push_back({consensus::ConfChangeType::kRemoveNode, NodeId(node)});
  return r->node->ProposeConfChange(cc, Remaining(deadline));
}

Status Store::TransferLeader(uint64_t shard, uint64_t node) {
  auto r = Find(shard);
  if (!r) return ShardNotFoundError(shard);
  return r->node->TransferLeadership(NodeId(node));
}

// --- Splits ---------------------------------------------------------------------------

void Store::SetShardIdAllocator(ShardIdAllocator allocate) {
  std::lock_guard lock(bg_mu_);
  allocate_ = std::move(allocate);
}

void Store::CompactDroppedRows(const std::vector<std::pair<std::string, std::string>>& ranges) {
  for (const auto& [lo, hi] : ranges) {
    if (compaction_cancel_) {  // stopping: compacted at the next start
      dropped_ranges_pending_.fetch_sub(1, std::memory_order_relaxed);
      continue;
    }
    // The range deletion is applied: files wholly inside go unread, and a compaction of
    // the range rewrites the rest without the deleted keys.
    Status s;
    for (auto cf : {mvcc::kVersionCf, txn::kLockCf}) {
      if (s.ok()) s = engine_->DeleteFilesInRange(cf, lo, hi);
      if (s.ok()) s = engine_->CompactRange(cf, lo, hi, &compaction_cancel_);
    }
    // A failure leaves the space to later compactions: the rows are deleted all the same.
    // A stop is no failure: the range's record stays, and the next start compacts it.
    if (s.code() != StatusCode::kCancelled) {
      (s.ok() ? dropped_ranges_compacted_ : dropped_range_errors_)
          .fetch_add(1, std::memory_order_relaxed);
      storage::WriteBatch done;
      done.Delete(kMeta, DroppedRangeKey(lo, hi));
      if (Status w = engine_->Write({}, done); !w.ok()) {
        // Kept: the range is compacted again at the next start, which costs little.
        dropped_range_errors_.fetch_add(1, std::memory_order_relaxed);
      }
    }
    dropped_ranges_pending_.fetch_sub(1, std::memory_order_relaxed);
  }
}

void Store::CompactLoop() {
  std::unique_lock lock(bg_mu_);
  while (true) {
    bg_cv_.wait(lock, [&] { return stopping_ || !dropped_ranges_.empty(); });
    if (stopping_) break;
    auto ranges = std::move(dropped_ranges_);
    dropped_ranges_.clear();
    lock.unlock();
    CompactDroppedRows(ranges);
    lock.lock();
  }
}

void Store::BackgroundLoop() {
  auto next_check = Steady::now() + options_.split_check_interval;
  auto next_expiry = Steady::now() + options_.request_expiry_interval;
  std::unique_lock lock(bg_mu_);
  while (!stopping_) {
    const auto wake = std::min(children_retry_, options_.request_id_ttl.count() > 0
                                                    ? std::min(next_check, next_expiry)
                                                    : next_check);
    bg_cv_.wait_until(lock, wake, [&] { return stopping_ || children_pending_; });
    if (stopping_) break;
    if (Steady::now() >= children_retry_) {
      children_retry_ = Steady::time_point::max();
      children_pending_ = true;
    }
    if (children_pending_) {
      children_pending_ = false;
      lock.unlock();
      FoundChildren();
      lock.lock();
      continue;
    }
    if (Steady::now() >= next_check) {
      lock.unlock();
      CheckSplits();
      lock.lock();
      next_check = Steady::now() + options_.split_check_interval;
    }
    if (options_.request_id_ttl.count() > 0 && Steady::now() >= next_expiry) {
      lock.unlock();
      CheckRequestExpiry();
      lock.lock();
      next_expiry = Steady::now() + options_.request_expiry_interval;
    }
  }
}

void Store::CheckRequestExpiry() {
  const uint64_t now_ms = clock_->NowMillis();
  const uint64_t ttl_ms = static_cast<uint64_t>(options_.request_id_ttl.count());
  if (now_ms <= ttl_ms) return;
  for (const auto& r : LedReplicas()) {
    // A shard that is not ready now (a leader change, a split) is tried next round.
    (void)ExpireRequests(r->machine->id(), now_ms - ttl_ms,
                         Steady::now() + std::chrono::seconds(10));
  }
}

std::vector<std::shared_ptr<Store::Replica>> Store::LedReplicas() const {
  std::vector<std::shared_ptr<Replica>> led;
  std::shared_lock lock(mu_);
  for (const auto& [id, r] : replicas_) {
    if (r->node->Leader() == NodeId(options_.node_id)) led.push_back(r);
  }
  return led;
}

Result<std::shared_ptr<Store::Replica>> Store::LeaderReplica(uint64_t shard,
                                                             Steady::time_point deadline) {
  auto r = Find(shard);
  if (!r) return ShardNotFoundError(shard);
  if (r->node->Leader() != NodeId(options_.node_id)) {
    return NotLeaderError(shard, r->node->Leader().value());
  }
  RETURN_IF_ERROR(EnsureDescribed(*r, deadline));
  return r;
}

Result<uint64_t> Store::ExpireRequests(uint64_t shard, uint64_t cutoff_ms,
                                       Steady::time_point deadline) {
  ASSIGN_OR_RETURN(auto r, LeaderReplica(shard, deadline));
  uint64_t deleted = 0;
  std::string after;
  do {
    if (Steady::now() >= deadline) {
      return Status::DeadlineExceeded("request records of shard " + std::to_string(shard) +
                                      " not all examined in time");
    }
    ASSIGN_OR_RETURN(
        WriteOutcome out,
        ProposeCommand(*r,
                       EncodeExpireRequestsCommand(
                           cutoff_ms, after, std::max<uint64_t>(1, options_.request_expiry_batch)),
                       deadline));
    RETURN_IF_ERROR(OutcomeStatus(out));
    deleted += out.version;
    after = std::move(out.resume_after);
  } while (!after.empty());
  return deleted;
}

std::vector<SplitChild> Store::RecordedChildren(bool* complete) const {
  std::vector<SplitChild> children;
  *complete = true;
  storage::ReadOptions ro;
  ro.lower_bound = std::string(kChildPrefix);
  ro.upper_bound = mvcc::PrefixSuccessor(kChildPrefix);
  auto it = engine_->NewIterator(ro, kMeta);
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    auto c = DecodeChild(it->value());
    if (c.ok()) {
      children.push_back(std::move(*c));
    } else {
      *complete = false;
    }
  }
  if (!it->status().ok()) *complete = false;
  return children;
}

void Store::FoundChildren() {
  bool complete = true;
  for (const auto& c : RecordedChildren(&complete)) {
    Status s = FoundChild(c);
    if (!s.ok()) {
      // Left recorded: tried again in a moment (or at a restart).
      std::lock_guard lock(bg_mu_);
      children_retry_ = std::min(children_retry_, Steady::now() + std::chrono::milliseconds(200));
    }
  }
}

Status Store::FoundChild(const SplitChild& c) {
  const uint64_t id = c.descriptor.id;
  std::lock_guard create(create_mu_);
  consensus::HardState prior;
  if (auto existing = Find(id)) {
    if (Initialized(existing->machine->descriptor())) {
      // A snapshot from the new group's leader got here first: it is a member already.
      storage::WriteBatch b;
      b.Delete(kMeta, ChildKey(id));
      RETURN_IF_ERROR(engine_->Write({.sync = true}, b));
      std::unique_lock lock(mu_);
      unfounded_children_.erase(id);
      return Status::OK();
    }
    // A member created by a message. Stopped first, so that its log no longer moves.
    failpoint::Hit("store.found_child.stop_member", id);
    {
      std::unique_lock lock(mu_);
      replicas_.erase(id);
    }
    existing->node->Stop();
  }
  {
    ASSIGN_OR_RETURN(auto old_log, replication::RaftLogStore::Open(engine_, id));
    ASSIGN_OR_RETURN(auto last, old_log->LastIndex());
    // A log that ends at the split's own snapshot is what an earlier founding left when
    // it stopped between the log and the state machine (written in that order; the
    // machine may be missing, or be the empty one of a member a message created):
    // founded again below. Were it the group's snapshot at that index instead, it
    // holds the same state, the split's.
    auto machine = ShardMachine::Load(engine_, id);
    if (!machine.ok() && machine.status().code() != StatusCode::kNotFound) {
      return machine.status();
    }
    if (last.value() > kInitialLogIndex && machine.ok()) {
      // It got the group's snapshot (and maybe entries) from the new group's leader
      // meanwhile, and acknowledged them; the snapshot may not have reached its state
      // machine yet, so its descriptor did not say so. Its log is the group's: start it
      // again from there, never from the split's empty snapshot, which would lose what
      // it acknowledged.
      old_log.reset();
      ASSIGN_OR_RETURN(auto r, StartReplica(std::move(*machine), /*join=*/true));
      storage::WriteBatch b;
      b.Delete(kMeta, ChildKey(id));
      RETURN_IF_ERROR(engine_->Write({.sync = true}, b));
      std::unique_lock lock(mu_);
      replicas_[id] = std::move(r);
      unfounded_children_.erase(id);
      return Status::OK();
    }
    // Empty: it holds no entries (the group's log starts with a snapshot it never got),
    // but it may have voted; keep its term and vote.
    ASSIGN_OR_RETURN(auto init, old_log->GetInitialState());
    prior = init.hard_state;
  }
  RETURN_IF_ERROR(WriteInitialLog(engine_, c.descriptor, prior));
  RETURN_IF_ERROR(failpoint::Inject("store.found_child.between_log_and_machine", id));
  RETURN_IF_ERROR(ShardMachine::FoundChild(engine_, c));
  ASSIGN_OR_RETURN(auto machine, ShardMachine::Load(engine_, id));
  ASSIGN_OR_RETURN(auto r, StartReplica(std::move(machine), /*join=*/false));
  std::unique_lock lock(mu_);
  replicas_[id] = std::move(r);
  unfounded_children_.erase(id);
  return Status::OK();
}

Status Store::Split(uint64_t shard, const std::string& split_key, uint64_t new_id,
                    Steady::time_point deadline) {
  ASSIGN_OR_RETURN(auto r, LeaderReplica(shard, deadline));
  const ShardRecord d = r->machine->descriptor();
  ASSIGN_OR_RETURN(
      auto out,
      ProposeCommand(*r, EncodeSplitCommand(d.epoch.version, split_key, new_id), deadline));
  return OutcomeStatus(out);
}

Result<Store::SplitPoint> Store::FindSplitPoint(uint64_t shard) const {
  auto r = Find(shard);
  if (!r) return ShardNotFoundError(shard);
  const ShardRecord d = r->machine->descriptor();
  if (!Initialized(d)) return Status::NotFound("shard " + std::to_string(shard) + " has no range");
  auto [lo, hi] = RowRange(d);
  // One pass over the rows' versions: remember row boundaries with the bytes before
  // them, then take the boundary nearest half.
  std::vector<std::pair<uint64_t, std::string>> rows;  // bytes before the row, row key
  uint64_t bytes = 0;
  storage::ReadOptions ro;
  ro.lower_bound = lo;
  ro.upper_bound = hi;
  auto it = engine_->NewIterator(ro, mvcc::kVersionCf);
  std::string last_row;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    const std::string_view k = it->key();
    if (k.size() <= 8) continue;
    const std::string_view row = k.substr(0, k.size() - 8);
    if (row != last_row) {
      last_row.assign(row);
      rows.emplace_back(bytes, last_row);
    }
    bytes += k.size() + it->value().size();
  }
  RETURN_IF_ERROR(it->status());
  if (rows.size() < 2) {
    return Status::NotFound("shard " + std::to_string(shard) + " has fewer than two rows");
  }
  size_t best = 1;
  for (size_t i = 1; i < rows.size(); ++i) {
    if (rows[i].first <= bytes / 2) best = i;
  }
  return SplitPoint{rows[best].second, bytes};
}

void Store::CheckSplits() {
  const uint64_t limit = split_bytes_.load();
  ShardIdAllocator allocate;
  {
    std::lock_guard lock(bg_mu_);
    allocate = allocate_;
  }
  if (limit == 0 || !allocate) return;
  for (const auto& r : LedReplicas()) {
    const ShardRecord d = r->machine->descriptor();
    if (!Initialized(d)) continue;
    auto [lo, hi] = RowRange(d);
    auto size = engine_->ApproximateSize(mvcc::kVersionCf, lo, hi);
    if (!size.ok()) continue;
    const uint64_t applied = r->machine->Applied().value();
    const bool quiet = applied == r->checked_at_applied;
    r->checked_at_applied = applied;
    if (*size <= limit) {
      // The estimate of rows still in the memtable is a sample, and for a few hundred
      // rows it can be half their size. While writes go on, a later check looks again;
      // once they stop, nothing would. So a small shard (a few MiB at most: reading it
      // costs little) estimated above half the limit is measured once when a check finds
      // it took no write since the check before. (Larger shards have enough rows for a
      // close estimate, or have them in files.)
      constexpr uint64_t kMeasureQuietBytes = 4u << 20;
      if (*size <= limit / 2 || *size > kMeasureQuietBytes || !quiet ||
          r->measured_at_applied == std::max<uint64_t>(applied, 1)) {
        continue;
      }
    } else if (r->measured_at_applied != 0 && r->measured_bytes <= limit &&
               applied < r->measured_at_applied + 256 &&
               r->measured_bytes + (applied - r->measured_at_applied) * 1024 <= limit) {
      // The estimate says big; measured not long ago, and little has changed since.
      continue;
    }
    auto point = FindSplitPoint(d.id);
    r->measured_at_applied = std::max<uint64_t>(applied, 1);
    r->measured_bytes = point.ok() ? point->bytes : 0;
    if (!point.ok() || point->bytes <= limit) continue;
    auto id = allocate();
    if (!id.ok()) return;  // the controller is away; next round
    (void)Split(d.id, point->key, *id, Steady::now() + std::chrono::seconds(5));
  }
}

std::vector<ShardRecord> Store::Describe() const {
  std::vector<ShardRecord> out;
  std::shared_lock lock(mu_);
  for (const auto& [id, r] : replicas_) {
    ShardRecord d = r->machine->descriptor();
    if (!Initialized(d)) continue;
    const NodeId leader = r->node->Leader();
    d.leader = leader == NodeId(options_.node_id) && r->node->Health().ok() ? options_.node_id : 0;
    out.push_back(std::move(d));
  }
  return out;
}

Store::Stats Store::GetStats() const {
  Stats s;
  std::shared_lock lock(mu_);
  for (const auto& [id, r] : replicas_) {
    s.shards++;
    if (Status health = r->node->Health(); !health.ok()) {
      if (s.failed++ == 0) s.failure = "shard " + std::to_string(id) + ": " + health.message();
      continue;
    }
    if (r->node->Leader() == NodeId(options_.node_id)) s.leaders++;
    const replication::GroupStatus g = r->node->GetStatus();
    if (g.last_index >= g.first_index) {
      s.raft_log_entries += g.last_index.value() - g.first_index.value() + 1;
    }
    s.snapshots_installed += g.snapshots_installed;
  }
  for (const auto& loop : loops_) {
    const auto l = loop->stats();
    s.loops.iterations += l.iterations;
    s.loops.log_writes += l.log_writes;
    s.loops.synced_writes += l.synced_writes;
    s.loops.readies += l.readies;
  }
  s.snapshots_deferred = snapshots_deferred_.load(std::memory_order_relaxed);
  s.dropped_ranges_compacted = dropped_ranges_compacted_.load(std::memory_order_relaxed);
  s.dropped_range_errors = dropped_range_errors_.load(std::memory_order_relaxed);
  s.dropped_ranges_pending = dropped_ranges_pending_.load(std::memory_order_relaxed);
  return s;
}

Result<replication::GroupStatus> Store::GroupStatusOf(uint64_t shard) const {
  auto r = Find(shard);
  if (!r) return Status::NotFound("shard " + std::to_string(shard) + " is not on this node");
  return r->node->GetStatus();
}

Result<ShardRecord> Store::DescriptorOf(uint64_t shard) const {
  auto r = Find(shard);
  if (!r) return Status::NotFound("shard " + std::to_string(shard) + " is not on this node");
  return r->machine->descriptor();
}

}  // namespace gojodb::sharding
