#include "core/replication/raft_node.h"

#include "core/consensus/bootstrap.h"
#include "core/consensus/codec.h"
#include "core/mvcc/key_codec.h"
#include "core/replication/raft_loop.h"
#include "internal/failpoint.h"

namespace gojodb::replication {

using consensus::Entry;
using consensus::EntryType;
using consensus::LogIndex;
using consensus::NodeId;

namespace {

// A proposal's entry: proposer id (u64) + proposal number (u64) + payload, so the
// proposing node recognizes its own entries when they apply.
// A conf change's context has the same prefix.
std::string EncodeProposal(NodeId node, uint64_t id, std::string_view data) {
  std::string out;
  mvcc::AppendUint64(&out, node.value());
  mvcc::AppendUint64(&out, id);
  out.append(data);
  return out;
}

// Bootstraps an empty durable log with the founding members (see consensus::Bootstrap).
Status BootstrapLog(RaftLogStore* store, storage::Engine* engine,
                    const std::vector<NodeId>& voters) {
  consensus::MemoryStorage scratch;
  RETURN_IF_ERROR(consensus::Bootstrap(&scratch, voters));
  ASSIGN_OR_RETURN(auto init, scratch.GetInitialState());
  ASSIGN_OR_RETURN(LogIndex last, scratch.LastIndex());
  ASSIGN_OR_RETURN(auto ents, scratch.Entries(LogIndex(1), last + 1, UINT64_MAX));
  storage::WriteBatch b;
  store->StageBootstrap(init.conf_state, &b);
  RETURN_IF_ERROR(store->StageEntries(ents, &b));
  store->StageHardState(init.hard_state, &b);
  Status s = engine->Write({.sync = true}, b);
  if (!s.ok()) {
    store->DiscardStaged();
    return s;
  }
  return store->OnDurable();
}

}  // namespace

Result<std::unique_ptr<RaftNode>> RaftNode::Start(const RaftNodeOptions& options,
                                                  storage::Engine* engine, StateMachine* sm,
                                                  Transport* transport) {
  auto loop = std::make_unique<RaftLoop>(engine, options.tick_interval);
  RaftLoop* raw = loop.get();
  return Start(options, raw, sm, transport, std::move(loop));
}

Result<std::unique_ptr<RaftNode>> RaftNode::Start(const RaftNodeOptions& options, RaftLoop* loop,
                                                  StateMachine* sm, Transport* transport) {
  return Start(options, loop, sm, transport, nullptr);
}

Result<std::unique_ptr<RaftNode>> RaftNode::Start(const RaftNodeOptions& options, RaftLoop* loop,
                                                  StateMachine* sm, Transport* transport,
                                                  std::unique_ptr<RaftLoop> own_loop) {
  storage::Engine* engine = loop->engine();
  std::unique_ptr<RaftNode> node(new RaftNode(options, engine, sm, transport));
  node->loop_ = loop;
  ASSIGN_OR_RETURN(node->store_, RaftLogStore::Open(engine, options.group));
  ASSIGN_OR_RETURN(auto init, node->store_->GetInitialState());
  ASSIGN_OR_RETURN(LogIndex last, node->store_->LastIndex());
  const bool empty =
      last == LogIndex{} && init.hard_state.empty() && init.conf_state.voters.empty();
  if (empty && !options.join) {
    if (options.initial_voters.empty()) {
      return Status::FailedPrecondition("a new raft group needs its initial voters");
    }
    RETURN_IF_ERROR(BootstrapLog(node->store_.get(), engine, options.initial_voters));
    ASSIGN_OR_RETURN(init, node->store_->GetInitialState());
  }
  ASSIGN_OR_RETURN(auto snap, node->store_->StoredSnapshot());
  node->snapshot_index_ = snap.metadata.index;
  node->snapshot_bytes_ = snap.data.size();
  node->conf_state_ = init.conf_state;
  node->conf_index_ = node->store_->ConfIndex();
  node->applied_ = std::max(sm->Applied(), snap.metadata.index);
  if (sm->Applied() < snap.metadata.index) {
    if (snap.data.empty()) {
      // Only a state kept in the log's engine makes snapshots without data, and it is
      // durable before them: the engine lost writes it had acknowledged.
      return Status::Corruption(
          "raft group " + std::to_string(options.group) + ": the state machine is at index " +
          std::to_string(sm->Applied().value()) + ", behind the log's snapshot at " +
          std::to_string(snap.metadata.index.value()) + ", which holds no data to restore it from");
    }
    // The state machine lost what the snapshot holds (its writes were not synced, or it
    // was wiped): restore it, as the log behind the snapshot may be gone.
    RETURN_IF_ERROR(sm->Restore(snap.metadata.index, snap.data));
  }
  consensus::Config c;
  c.id = options.id;
  c.election_tick = options.election_tick;
  c.heartbeat_tick = options.heartbeat_tick;
  c.storage = node->store_.get();
  c.applied = node->applied_;
  c.pre_vote = options.pre_vote;
  c.check_quorum = options.check_quorum;
  if (options.lease_reads) c.read_only_option = consensus::ReadOnlyOption::kLeaseBased;
  c.random_seed = options.random_seed;
  c.max_size_per_msg = options.max_size_per_msg;
  ASSIGN_OR_RETURN(node->rn_, consensus::RawNode::Create(c));
  node->UpdateStatus();
  node->own_loop_ = std::move(own_loop);
  loop->Attach(node.get());
  return node;
}

RaftNode::RaftNode(const RaftNodeOptions& options, storage::Engine* engine, StateMachine* sm,
                   Transport* transport)
    : options_(options), engine_(engine), sm_(sm), transport_(transport) {
  // Proposal numbers are unique across restarts of this node too, so a replayed entry of
  // an earlier run can never complete a proposal of this one.
  next_proposal_ =
      static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count());
}

RaftNode::~RaftNode() {
  Stop();
  own_loop_.reset();
}

void RaftNode::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopped_) return;
    stopping_ = true;
    stopped_ = true;
  }
  if (loop_ != nullptr) loop_->Detach(this);
  std::lock_guard lock(mu_);
  FailAll(Status::Unavailable("raft node stopped"));
}

void RaftNode::FailAll(const Status& status) {
  for (auto& [id, w] : waiters_) {
    w->done = true;
    w->status = status;
    w->cv.notify_one();
  }
  waiters_.clear();
  for (auto& [id, w] : read_waiters_) {
    w->done = true;
    w->status = status;
    w->cv.notify_one();
  }
  read_waiters_.clear();
}

RaftNode::Ticket RaftNode::Enqueue(const std::function<void(uint64_t id)>& enqueue) {
  Ticket t;
  std::lock_guard lock(mu_);
  if (!failed_.ok()) {
    t.status = failed_;
    return t;
  }
  if (stopping_) {
    t.status = Status::Unavailable("raft node stopped");
    return t;
  }
  t.id = next_proposal_++;
  t.waiter = std::make_shared<Waiter>();
  waiters_[t.id] = t.waiter;
  enqueue(t.id);
  loop_->Notify(this);
  return t;
}

Status RaftNode::WaitFor(Ticket& t, std::chrono::milliseconds timeout, std::string_view what,
                         std::string* result) {
  if (!t.status.ok() || t.waiter == nullptr) {
    return t.status.ok() ? Status::InvalidArgument("empty proposal ticket") : t.status;
  }
  std::unique_lock lock(mu_);
  if (!t.waiter->cv.wait_for(lock, timeout, [&] { return t.waiter->done; })) {
    waiters_.erase(t.id);
    return Status::DeadlineExceeded(std::string(what) +
                                    " did not apply in time; its outcome is unknown");
  }
  if (result != nullptr) *result = std::move(t.waiter->result);
  return t.waiter->status;
}

Status RaftNode::Await(const std::function<void(uint64_t id)>& enqueue,
                       std::chrono::milliseconds timeout, std::string_view what,
                       std::string* result) {
  Ticket t = Enqueue(enqueue);
  return WaitFor(t, timeout, what, result);
}

Status RaftNode::Propose(std::string data, std::chrono::milliseconds timeout, std::string* result) {
  return Await(
      [&](uint64_t id) {
        proposals_.push_back({id, std::move(data), 0});
      },
      timeout, "proposal", result);
}

RaftNode::Ticket RaftNode::Submit(std::string data, uint64_t term) {
  return Enqueue([&](uint64_t id) { proposals_.push_back({id, std::move(data), term}); });
}

uint64_t RaftNode::LeaderTerm() const {
  std::lock_guard lock(mu_);
  return leader_ == options_.id ? leader_term_ : 0;
}

Status RaftNode::WaitForProposed(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  if (!failed_.ok()) return failed_;
  if (stopping_) return Status::Unavailable("raft node stopped");
  // Nothing queued, and the loop applied all it had appended: nothing to wait for.
  if (proposals_.empty() && caught_up_) return Status::OK();
  return AwaitRead(lock, &unsent_marks_, timeout,
                   "the writes proposed before the read did not apply in time");
}

Status RaftNode::AwaitRead(std::unique_lock<std::mutex>& lock, std::vector<uint64_t>* queue,
                           std::chrono::milliseconds timeout, const char* late) {
  auto waiter = std::make_shared<ReadWaiter>();
  const uint64_t id = next_proposal_++;
  read_waiters_[id] = waiter;
  queue->push_back(id);
  loop_->Notify(this);
  if (!waiter->cv.wait_for(lock, timeout, [&] { return waiter->done; })) {
    read_waiters_.erase(id);
    return Status::DeadlineExceeded(late);
  }
  return waiter->status;
}

bool RaftNode::NotProposed(const Status& s) {
  if (s.code() != StatusCode::kUnavailable) return false;
  for (const auto& [k, v] : s.details()) {
    if (k == "reason" && v == "NOT_PROPOSED") return true;
  }
  return false;
}

Status RaftNode::Wait(Ticket& ticket, std::chrono::milliseconds timeout, std::string* result) {
  return WaitFor(ticket, timeout, "proposal", result);
}

Status RaftNode::ProposeConfChange(consensus::ConfChange cc, std::chrono::milliseconds timeout) {
  return Await(
      [&](uint64_t id) {
        cc.context = EncodeProposal(options_.id, id, cc.context);
        tasks_.push_back([this, id, cc = std::move(cc)] {
          Status s = rn_->ProposeConfChange(cc);
          if (!s.ok()) {
            std::lock_guard lock(mu_);
            Complete(id, Status::FailedPrecondition("membership change refused: " + s.message()),
                     "");
          }
        });
      },
      timeout, "membership change", nullptr);
}

Status RaftNode::ReadBarrier(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  if (!failed_.ok()) return failed_;
  if (stopping_) return Status::Unavailable("raft node stopped");
  if (leader_.none()) return Status::Unavailable("no raft leader is known");
  if (solo_leader_) return Status::OK();
  return AwaitRead(lock, &unsent_reads_, timeout, "leadership was not confirmed in time");
}

Status RaftNode::TransferLeadership(NodeId to) {
  std::lock_guard lock(mu_);
  if (stopping_) return Status::Unavailable("raft node stopped");
  tasks_.push_back([this, to] { (void)rn_->TransferLeadership(to); });
  loop_->Notify(this);
  return Status::OK();
}

void RaftNode::Deliver(consensus::Message message) {
  std::lock_guard lock(mu_);
  if (stopping_) return;
  inbox_.push_back(std::move(message));
  loop_->Notify(this);
}

void RaftNode::ReportSnapshot(NodeId to, bool ok) {
  std::lock_guard lock(mu_);
  if (stopping_) return;
  tasks_.push_back([this, to, ok] {
    rn_->ReportSnapshot(
        to, ok ? consensus::SnapshotStatus::kFinish : consensus::SnapshotStatus::kFailure);
  });
  loop_->Notify(this);
}

NodeId RaftNode::Leader() const {
  std::lock_guard lock(mu_);
  return leader_;
}

GroupStatus RaftNode::GetStatus() const {
  std::lock_guard lock(mu_);
  return status_;
}

void RaftNode::Complete(uint64_t id, Status status, std::string result) {
  auto it = waiters_.find(id);
  if (it == waiters_.end()) return;
  it->second->done = true;
  it->second->status = std::move(status);
  it->second->result = std::move(result);
  it->second->cv.notify_one();
  waiters_.erase(it);
}

void RaftNode::FailReads(const Status& status) {
  for (auto it = read_waiters_.begin(); it != read_waiters_.end();) {
    if (it->second->indexed) {
      ++it;
      continue;
    }
    it->second->done = true;
    it->second->status = status;
    it->second->cv.notify_one();
    it = read_waiters_.erase(it);
  }
}

void RaftNode::UpdateStatus() {
  consensus::NodeStatus ns = rn_->GetStatus();
  const consensus::Raft& raft = rn_->raft();
  const consensus::LogIndex last = raft.log().LastIndex();
  const consensus::LogIndex first = raft.log().FirstIndex();
  const bool solo = ns.soft_state.state == consensus::StateType::kLeader &&
                    raft.tracker().IsSingleton() && raft.CommittedEntryInCurrentTerm();
  std::lock_guard lock(mu_);
  caught_up_ = applied_ >= last;
  solo_leader_ =
      solo && raft.pending_conf_index() <= applied_ && applied_ >= raft.log().committed();
  status_.id = options_.id;
  status_.leader = ns.soft_state.lead;
  status_.term = ns.hard_state.term.value();
  status_.is_leader = ns.soft_state.state == consensus::StateType::kLeader;
  status_.commit = ns.hard_state.commit;
  status_.applied = applied_;
  status_.first_index = first;
  status_.last_index = last;
  status_.snapshot_index = snapshot_index_;
  status_.snapshot_bytes = snapshot_bytes_;
  status_.snapshots_installed = snapshots_installed_;
  status_.conf_state = conf_state_;
  status_.progress = std::move(ns.progress);
  // Reads whose index has applied are done.
  for (auto it = read_waiters_.begin(); it != read_waiters_.end();) {
    if (it->second->indexed && it->second->index <= applied_) {
      it->second->done = true;
      it->second->cv.notify_one();
      it = read_waiters_.erase(it);
    } else {
      ++it;
    }
  }
}

bool RaftNode::Intake(bool tick) {
  std::deque<consensus::Message> inbox;
  std::deque<Proposal> proposals;
  std::deque<std::function<void()>> tasks;
  std::vector<uint64_t> reads, marks;
  failpoint::Hit("raft_node.intake", options_.group);
  {
    std::lock_guard lock(mu_);
    if (stopping_) return false;
    inbox.swap(inbox_);
    proposals.swap(proposals_);
    tasks.swap(tasks_);
    reads.swap(unsent_reads_);
    marks.swap(unsent_marks_);
    if (!proposals.empty()) caught_up_ = false;  // until they apply (or are dropped)
  }
  if (tick) rn_->Tick();
  if (options_.lease_reads) {
    // The lease is counted in ticks, and a leader whose ticks run slow holds it longer
    // in real time. When a quarter of a tick more than one tick has passed since the
    // last tick (the loop was held up: a long write, a paused process), void it: reads
    // are confirmed by a heartbeat round until a quorum acks a heartbeat sent from now
    // on. The lease (election - 2 - drift ticks) stays inside followers' promises
    // (election - 1 ticks) with every tick up to 1.25 ticks long. The clock is read
    // after the reads were taken, so every one of them began before this check.
    const auto now = std::chrono::steady_clock::now();
    if (now - last_tick_ > options_.tick_interval * 5 / 4) rn_->raft().VoidLease();
    if (tick) last_tick_ = now;
  }
  for (auto& m : inbox) (void)rn_->Step(std::move(m));  // stale or foreign: dropped
  for (auto& [id, data, term] : proposals) {
    Status s = term != 0 && rn_->raft().term().value() != term
                   ? Status::Unavailable("the term it was meant for has passed")
                   : rn_->Propose(EncodeProposal(options_.id, id, data));
    if (!s.ok()) {
      std::lock_guard lock(mu_);
      Complete(id,
               Status::Unavailable("no raft leader to take the proposal: " + s.message())
                   .WithDetail("reason", "NOT_PROPOSED"),
               "");
    }
  }
  for (auto& task : tasks) task();
  if (!marks.empty()) {
    // Every proposal submitted before these waits is in the log now, or was dropped.
    const consensus::LogIndex last = rn_->raft().log().LastIndex();
    std::lock_guard lock(mu_);
    for (uint64_t id : marks) {
      auto it = read_waiters_.find(id);
      if (it == read_waiters_.end()) continue;
      it->second->indexed = true;
      it->second->index = last;
    }
  }
  queued_reads_.insert(queued_reads_.end(), reads.begin(), reads.end());
  MaybeStartReadRound();
  return true;
}

bool RaftNode::failed() const {
  std::lock_guard lock(mu_);
  return !failed_.ok();
}

Status RaftNode::Health() const {
  std::lock_guard lock(mu_);
  return failed_;
}

void RaftNode::Fail(const Status& s, bool discard_staged) {
  if (discard_staged) store_->DiscardStaged();
  pending_ready_.reset();
  // A failed write leaves the log in an unknown state: stop serving.
  std::lock_guard lock(mu_);
  failed_ = s.WithContext("raft node failed");
  stopping_ = true;
  FailAll(failed_);
}

Status RaftNode::AfterIteration() {
  RETURN_IF_ERROR(MaybeSnapshot(store_->TakeSnapshotWanted()));
  UpdateStatus();
  return Status::OK();
}

void RaftNode::MaybeStartReadRound() {
  const auto now = std::chrono::steady_clock::now();
  // A round that did not come back within two election timeouts was lost: start
  // another (its barriers time out on their own).
  const bool round_lost =
      !read_rounds_.empty() &&
      now - round_started_ > 2 * options_.election_tick * options_.tick_interval;
  if (!queued_reads_.empty() && (read_rounds_.empty() || round_lost)) {
    const uint64_t round = next_read_round_++;
    std::string ctx;
    mvcc::AppendUint64(&ctx, round);
    Status r = rn_->ReadIndex(ctx);
    if (r.ok()) {
      read_rounds_[round] = std::move(queued_reads_);
      round_started_ = now;
    } else {
      std::lock_guard lock(mu_);
      for (uint64_t id : queued_reads_) {
        auto it = read_waiters_.find(id);
        if (it == read_waiters_.end()) continue;
        it->second->done = true;
        it->second->status = Status::Unavailable("read index refused: " + r.message());
        it->second->cv.notify_one();
        read_waiters_.erase(it);
      }
    }
    queued_reads_.clear();
  }
}

Status RaftNode::StageReady(storage::WriteBatch* batch, bool* sync) {
  pending_ready_ = rn_->GetReady();
  consensus::Ready& rd = *pending_ready_;
  if (rd.soft_state) {
    std::lock_guard lock(mu_);
    if (rd.soft_state->lead != leader_) {
      FailReads(Status::Unavailable("raft leadership changed during the read"));
      read_rounds_.clear();   // rounds of the old leadership never answer
      queued_reads_.clear();  // failed just now
    }
    leader_ = rd.soft_state->lead;
    leader_term_ = rn_->raft().term().value();
  }
  // Persist (staged into the loop's shared batch), fsynced when the Ready says so,
  // before any message leaves. Staged into a batch of its own first, so that a refusal
  // leaves nothing of this group in the shared one.
  storage::WriteBatch mine;
  Status s;
  if (!rd.snapshot.empty()) s = store_->StageSnapshot(rd.snapshot, &mine);
  if (s.ok()) s = store_->StageEntries(rd.entries, &mine);
  if (!s.ok()) {
    store_->DiscardStaged();
    return s;
  }
  if (!rd.hard_state.empty()) store_->StageHardState(rd.hard_state, &mine);
  *sync = *sync || (rd.must_sync && mine.Count() > 0);
  batch->Append(std::move(mine));
  return Status::OK();
}

Status RaftNode::FinishReady() {
  consensus::Ready rd = std::move(*pending_ready_);
  pending_ready_.reset();
  RETURN_IF_ERROR(store_->OnDurable());
  // Send.
  if (!rd.messages.empty()) transport_->Send(std::move(rd.messages));
  // Apply: the snapshot, then the committed entries.
  if (!rd.snapshot.empty()) {
    const auto& md = rd.snapshot.metadata;
    // Durable and acknowledged, not yet restored.
    failpoint::Hit("raft_node.before_restore", options_.group);
    RETURN_IF_ERROR(sm_->Restore(md.index, rd.snapshot.data));
    applied_ = md.index;
    snapshot_index_ = md.index;
    snapshot_bytes_ = rd.snapshot.data.size();
    bytes_since_snapshot_ = 0;
    conf_state_ = md.conf_state;
    conf_index_ = md.index;
    ++snapshots_installed_;
  }
  if (!rd.read_states.empty()) {
    std::lock_guard lock(mu_);
    for (const auto& rs : rd.read_states) {
      if (rs.context.size() != 8) continue;
      const uint64_t round = mvcc::ReadUint64(rs.context);
      auto r = read_rounds_.find(round);
      if (r == read_rounds_.end()) continue;
      for (uint64_t id : r->second) {
        auto it = read_waiters_.find(id);
        if (it == read_waiters_.end()) continue;
        it->second->indexed = true;
        it->second->index = rs.index;
      }
      // Rounds answer in order; an earlier one still waiting was dropped.
      read_rounds_.erase(read_rounds_.begin(), std::next(r));
    }
  }
  for (const Entry& e : rd.committed_entries) RETURN_IF_ERROR(ApplyEntry(e));
  if (sm_->TakeSnapshotOutdated()) store_->MarkSnapshotOutdated();
  rn_->Advance();
  // A round that just came back lets the barriers gathered meanwhile go.
  MaybeStartReadRound();
  return Status::OK();
}

Status RaftNode::ApplyEntry(const Entry& e) {
  if (e.index <= applied_) return Status::OK();  // inside an installed snapshot
  applied_ = e.index;
  bytes_since_snapshot_ += e.data.size();
  if (e.type == EntryType::kConfChange) {
    auto cc = consensus::DecodeConfChange(e.data);
    if (!cc.ok()) return cc.status();
    Status outcome;
    if (e.index > conf_index_) {
      auto cs = rn_->ApplyConfChange(*cc);
      if (cs.ok()) {
        {
          // Before the change's proposer hears of it; this iteration's end decides anew.
          std::lock_guard lock(mu_);
          solo_leader_ = false;
        }
        conf_state_ = *cs;
        conf_index_ = e.index;
        storage::WriteBatch b;
        store_->StageConfState(e.index, conf_state_, &b);
        Status w = engine_->Write({}, b);
        if (!w.ok()) {
          store_->DiscardStaged();
          return w;
        }
        RETURN_IF_ERROR(store_->OnDurable());
        RETURN_IF_ERROR(sm_->ApplyConfState(e.index, conf_state_));
      } else {
        // An invalid change is a no-op on every member.
        outcome = Status::FailedPrecondition("membership change refused: " + cs.status().message());
      }
    }
    if (cc->context.size() >= 16 && mvcc::ReadUint64(cc->context) == options_.id.value()) {
      std::lock_guard lock(mu_);
      Complete(mvcc::ReadUint64(std::string_view(cc->context).substr(8)), outcome, "");
    }
    return Status::OK();
  }
  if (e.data.size() < 16) return Status::OK();  // a new leader's empty entry
  const uint64_t proposer = mvcc::ReadUint64(e.data);
  const uint64_t id = mvcc::ReadUint64(std::string_view(e.data).substr(8));
  std::string result;
  if (e.index > sm_->Applied()) {
    RETURN_IF_ERROR(sm_->ApplyCommand(e.index, std::string_view(e.data).substr(16), &result));
  }
  if (proposer == options_.id.value()) {
    std::lock_guard lock(mu_);
    Complete(id, Status::OK(), std::move(result));
  }
  return Status::OK();
}

Status RaftNode::MaybeSnapshot(bool force) {
  const bool by_entries = options_.snapshot_entries > 0 &&
                          applied_.value() >= snapshot_index_.value() + options_.snapshot_entries;
  const bool by_bytes =
      options_.snapshot_bytes > 0 && bytes_since_snapshot_ >= options_.snapshot_bytes;
  if (!force && !by_entries && !by_bytes) return Status::OK();
  // A follower needs one with data (force) and the stored one at this index has none:
  // taken again, with the data, at the same index.
  const bool refill = force && applied_ == snapshot_index_ && snapshot_bytes_ == 0;
  // Nothing new to capture yet; Raft asks again when it still needs one.
  if (applied_ <= snapshot_index_ && !refill) return Status::OK();
  std::string data;
  if (force || !options_.state_in_log_engine) {
    auto taken = sm_->Snapshot();
    if (!taken.ok()) {
      if (taken.status().code() == StatusCode::kUnimplemented) return Status::OK();
      return taken.status();
    }
    data = std::move(*taken);
  }
  storage::WriteBatch b;
  const uint64_t bytes = data.size();
  RETURN_IF_ERROR(store_->StageCreateSnapshot(applied_, conf_state_, std::move(data), &b));
  Status w = engine_->Write({}, b);
  if (!w.ok()) {
    store_->DiscardStaged();
    return w;
  }
  RETURN_IF_ERROR(store_->OnDurable());
  snapshot_index_ = applied_;
  snapshot_bytes_ = bytes;
  bytes_since_snapshot_ = 0;
  // Keep retain_entries behind the snapshot, and of those no more than hold
  // retain_bytes (the entry at the snapshot's index stays in any case).
  LogIndex keep_from(
      applied_.value() > options_.retain_entries ? applied_.value() - options_.retain_entries : 0);
  if (options_.retain_bytes > 0) {
    keep_from = std::max(
        keep_from, std::min(store_->FirstIndexWithin(applied_, options_.retain_bytes), applied_));
  }
  if (keep_from.value() > 0) {
    ASSIGN_OR_RETURN(LogIndex first, store_->FirstIndex());
    if (keep_from > first) {
      storage::WriteBatch c;
      RETURN_IF_ERROR(store_->StageCompact(keep_from, &c));
      w = engine_->Write({}, c);
      if (!w.ok()) {
        store_->DiscardStaged();
        return w;
      }
      RETURN_IF_ERROR(store_->OnDurable());
    }
  }
  return Status::OK();
}

}  // namespace gojodb::replication
