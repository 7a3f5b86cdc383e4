#include "core/replication/raft_node.h"

#include "core/consensus/bootstrap.h"
#include "core/consensus/codec.h"
#include "core/mvcc/key_codec.h"

namespace gojodb::replication {

using consensus::Entry;
using consensus::EntryType;
using consensus::LogIndex;
using consensus::NodeId;

namespace {

// A proposal's entry: proposer id (u64) + proposal number (u64) + payload, so the
// proposing node recognizes its own entries when they apply.
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
  std::unique_ptr<RaftNode> node(new RaftNode(options, engine, sm, transport));
  ASSIGN_OR_RETURN(node->store_, RaftLogStore::Open(engine, options.group));
  ASSIGN_OR_RETURN(auto init, node->store_->GetInitialState());
  ASSIGN_OR_RETURN(LogIndex last, node->store_->LastIndex());
  if (last == LogIndex{} && init.hard_state.empty() && init.conf_state.voters.empty()) {
    if (options.initial_voters.empty()) {
      return Status::FailedPrecondition("a new raft group needs its initial voters");
    }
    RETURN_IF_ERROR(BootstrapLog(node->store_.get(), engine, options.initial_voters));
  }
  consensus::Config c;
  c.id = options.id;
  c.election_tick = options.election_tick;
  c.heartbeat_tick = options.heartbeat_tick;
  c.storage = node->store_.get();
  c.applied = sm->Applied();
  c.pre_vote = options.pre_vote;
  c.check_quorum = options.check_quorum;
  c.random_seed = options.random_seed;
  c.max_size_per_msg = options.max_size_per_msg;
  ASSIGN_OR_RETURN(node->rn_, consensus::RawNode::Create(c));
  node->thread_ = std::thread([n = node.get()] { n->Loop(); });
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
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::lock_guard lock(mu_);
  for (auto& [id, w] : waiters_) {
    w->done = true;
    w->status = Status::Unavailable("raft node stopped");
  }
  done_cv_.notify_all();
}

Status RaftNode::Propose(std::string data, std::chrono::milliseconds timeout) {
  auto waiter = std::make_shared<Waiter>();
  std::unique_lock lock(mu_);
  if (!failed_.ok()) return failed_;
  if (stopping_) return Status::Unavailable("raft node stopped");
  const uint64_t id = next_proposal_++;
  waiters_[id] = waiter;
  proposals_.emplace_back(id, std::move(data));
  work_cv_.notify_one();
  if (!done_cv_.wait_for(lock, timeout, [&] { return waiter->done; })) {
    waiters_.erase(id);
    return Status::DeadlineExceeded("proposal did not apply in time; its outcome is unknown");
  }
  return waiter->status;
}

void RaftNode::Deliver(consensus::Message message) {
  std::lock_guard lock(mu_);
  if (stopping_) return;
  inbox_.push_back(std::move(message));
  work_cv_.notify_one();
}

NodeId RaftNode::Leader() const {
  std::lock_guard lock(mu_);
  return leader_;
}

void RaftNode::Loop() {
  auto next_tick = std::chrono::steady_clock::now() + options_.tick_interval;
  while (true) {
    std::deque<consensus::Message> inbox;
    std::deque<std::pair<uint64_t, std::string>> proposals;
    {
      std::unique_lock lock(mu_);
      work_cv_.wait_until(lock, next_tick,
                          [&] { return stopping_ || !inbox_.empty() || !proposals_.empty(); });
      if (stopping_) return;
      inbox.swap(inbox_);
      proposals.swap(proposals_);
    }
    if (std::chrono::steady_clock::now() >= next_tick) {
      rn_->Tick();
      next_tick += options_.tick_interval;
    }
    for (auto& m : inbox) (void)rn_->Step(std::move(m));  // stale or foreign: dropped
    for (auto& [id, data] : proposals) {
      Status s = rn_->Propose(EncodeProposal(options_.id, id, data));
      if (!s.ok()) {
        std::lock_guard lock(mu_);
        auto it = waiters_.find(id);
        if (it != waiters_.end()) {
          it->second->done = true;
          it->second->status =
              Status::Unavailable("no raft leader to take the proposal: " + s.message());
          waiters_.erase(it);
        }
        done_cv_.notify_all();
      }
    }
    while (rn_->HasReady()) {
      Status s = HandleReady();
      if (!s.ok()) {
        // A failed write leaves the log in an unknown state: stop serving.
        std::lock_guard lock(mu_);
        failed_ = s.WithContext("raft node failed");
        stopping_ = true;
        for (auto& [id, w] : waiters_) {
          w->done = true;
          w->status = failed_;
        }
        waiters_.clear();
        done_cv_.notify_all();
        return;
      }
    }
  }
}

Status RaftNode::HandleReady() {
  consensus::Ready rd = rn_->GetReady();
  if (rd.soft_state) {
    std::lock_guard lock(mu_);
    leader_ = rd.soft_state->lead;
  }
  // 1. Persist, fsynced when the Ready says so, before any message leaves.
  storage::WriteBatch batch;
  if (!rd.snapshot.empty()) RETURN_IF_ERROR(store_->StageSnapshot(rd.snapshot, &batch));
  RETURN_IF_ERROR(store_->StageEntries(rd.entries, &batch));
  if (!rd.hard_state.empty()) store_->StageHardState(rd.hard_state, &batch);
  if (batch.Count() > 0) {
    Status w = engine_->Write({.sync = rd.must_sync}, batch);
    if (!w.ok()) {
      store_->DiscardStaged();
      return w;
    }
  }
  RETURN_IF_ERROR(store_->OnDurable());
  // 2. Send.
  if (!rd.messages.empty()) transport_->Send(std::move(rd.messages));
  // 3. Apply.
  for (const Entry& e : rd.committed_entries) {
    if (e.type == EntryType::kConfChange) {
      auto cc = consensus::DecodeConfChange(e.data);
      if (!cc.ok()) return cc.status();
      (void)rn_->ApplyConfChange(*cc);  // an invalid change is a no-op on every member
      continue;
    }
    if (e.data.size() < 16) continue;  // a new leader's empty entry
    const uint64_t proposer = mvcc::ReadUint64(e.data);
    const uint64_t id = mvcc::ReadUint64(std::string_view(e.data).substr(8));
    if (e.index > sm_->Applied())
      RETURN_IF_ERROR(sm_->Apply(e.index, std::string_view(e.data).substr(16)));
    if (proposer == options_.id.value()) {
      std::lock_guard lock(mu_);
      auto it = waiters_.find(id);
      if (it != waiters_.end()) {
        it->second->done = true;
        waiters_.erase(it);
        done_cv_.notify_all();
      }
    }
  }
  // 4. Advance.
  rn_->Advance();
  return Status::OK();
}

}  // namespace gojodb::replication
