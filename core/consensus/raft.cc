// Raft core shared by every role: construction, the term rules of Step, elections,
// ticks and membership. Role-specific handling is in raft_leader.cc and
// raft_follower.cc.
#include "core/consensus/raft.h"

#include <algorithm>

#include "core/consensus/check.h"
#include "core/consensus/codec.h"

namespace gojodb::consensus {

Status ErrProposalDropped() { return Status::ResourceExhausted("consensus: proposal dropped"); }
bool IsProposalDropped(const Status& s) { return s.code() == StatusCode::kResourceExhausted; }

Raft::Raft(const Config& c)
    : id_(c.id),
      log_(c.storage, c.max_committed_size_per_ready),
      max_msg_size_(c.max_size_per_msg),
      max_uncommitted_size_(c.max_uncommitted_entries_size == 0 ? kNoLimit
                                                                : c.max_uncommitted_entries_size),
      trk_(c.max_inflight_msgs, c.max_inflight_bytes),
      read_only_option_(c.read_only_option),
      check_quorum_(c.check_quorum),
      pre_vote_(c.pre_vote),
      disable_proposal_forwarding_(c.disable_proposal_forwarding),
      heartbeat_timeout_(c.heartbeat_tick),
      election_timeout_(c.election_tick),
      lease_drift_ticks_(c.lease_drift_ticks >= 0 ? c.lease_drift_ticks
                                                  : std::max(1, c.election_tick / 10)),
      rng_state_(c.random_seed ^ (c.id.value() * 0x9E3779B97F4A7C15ULL)) {}

Result<std::unique_ptr<Raft>> Raft::Create(const Config& c) {
  RETURN_IF_ERROR(c.Validate());
  std::unique_ptr<Raft> r(new Raft(c));
  RETURN_IF_ERROR(r->Init(c));
  return r;
}

Status Raft::Init(const Config& c) {
  ASSIGN_OR_RETURN(InitialState st, c.storage->GetInitialState());
  ASSIGN_OR_RETURN(auto cp, RestoreConfig(st.conf_state, log_.LastIndex(), trk_.max_inflight(),
                                          trk_.max_inflight_bytes()));
  ConfState cs = SwitchToConfig(std::move(cp.first), std::move(cp.second));
  if (!cs.Equivalent(st.conf_state))
    return Status::Internal("consensus: restored config differs from storage");
  if (!st.hard_state.empty()) {
    // A commit index below the snapshot is fine (the snapshot, taken by the state
    // machine, may be more recent than the last synced hard state): everything in
    // a snapshot is committed. One beyond the log means lost entries.
    if (st.hard_state.commit > log_.LastIndex()) {
      return Status::DataLoss("consensus: hard state commit index is beyond the last log index");
    }
    LoadState(st.hard_state);
  }
  if (c.applied > LogIndex{}) {
    if (c.applied > log_.committed())
      return Status::InvalidArgument("consensus: applied index beyond commit");
    if (c.applied > log_.applied()) log_.AppliedTo(c.applied);
  }
  BecomeFollower(term_, kNoNode);
  return Status::OK();
}

void Raft::LoadState(const HardState& hs) {
  log_.CommitTo(hs.commit);
  term_ = hs.term;
  vote_ = hs.vote;
}

void Raft::Send(Message m) {
  if (m.from.none()) m.from = id_;
  if (m.type == MessageType::kVote || m.type == MessageType::kVoteResp ||
      m.type == MessageType::kPreVote || m.type == MessageType::kPreVoteResp) {
    // Vote messages carry the term they are for, which for PreVote is a future term.
    RAFT_CHECK(m.term != Term{}, "vote message must carry a term");
  } else {
    RAFT_CHECK(m.term == Term{}, "term is set by Send for non-vote messages");
    // Proposals and forwarded ReadIndex are local-ish: they carry no term so they are
    // handled whatever the receiver's term.
    if (m.type != MessageType::kProp && m.type != MessageType::kReadIndex) m.term = term_;
  }
  msgs_.push_back(std::move(m));
}

void Raft::ResetRandomizedElectionTimeout() {
  // splitmix64: small, seeded, and the only source of randomness in the core.
  uint64_t z = (rng_state_ += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  z ^= z >> 31;
  randomized_election_timeout_ =
      election_timeout_ + static_cast<int>(z % static_cast<uint64_t>(election_timeout_));
}

void Raft::Reset(Term term) {
  if (term_ != term) {
    term_ = term;
    vote_ = kNoNode;
  }
  lead_ = kNoNode;
  election_elapsed_ = 0;
  heartbeat_elapsed_ = 0;
  ResetRandomizedElectionTimeout();
  AbortLeaderTransfer();
  trk_.ResetVotes();
  LogIndex last = log_.LastIndex();
  for (auto& [id, pr] : trk_.progress) {
    bool learner = pr.is_learner;
    pr = Progress(last + 1, trk_.max_inflight(), trk_.max_inflight_bytes(), learner);
    if (id == id_) pr.match = last;
  }
  pending_conf_index_ = LogIndex{};
  uncommitted_size_ = 0;
  read_only_ = ReadOnly();
  // Reads waiting for a commit in a past leadership are dropped; clients retry.
  pending_read_index_messages_.clear();
  lease_revoked_ = false;
}

bool Raft::Promotable() const {
  const Progress* pr = trk_.Get(id_);
  return pr != nullptr && !pr->is_learner && !log_.HasPendingSnapshot();
}

bool Raft::InLease() const {
  if (!check_quorum_) return false;
  if (read_only_option_ == ReadOnlyOption::kLeaseBased) {
    // A leader may be serving reads under a lease that counts on our promise not to
    // vote for election_timeout ticks after we last heard from it. This also covers
    // a restart: we may have acked a heartbeat just before crashing (ticks_ and
    // last_leader_contact_ both start at 0).
    return ticks_ - last_leader_contact_ < static_cast<uint64_t>(election_timeout_);
  }
  return !lead_.none() && election_elapsed_ < election_timeout_;
}

void Raft::HeardFromLeader(NodeId lead) {
  election_elapsed_ = 0;
  lead_ = lead;
  last_leader_contact_ = ticks_;
}

bool Raft::HasValidLease() const {
  if (state_ != StateType::kLeader || read_only_option_ != ReadOnlyOption::kLeaseBased ||
      lease_revoked_) {
    return false;
  }
  // The tick (plus one; zero is "never") of the newest heartbeat acked by a quorum.
  LogIndex acked = trk_.config.voters.CommittedIndex([this](NodeId id) -> std::optional<LogIndex> {
    if (id == id_) return LogIndex(ticks_ + 1);
    const Progress* pr = trk_.Get(id);
    if (pr == nullptr || !pr->lease_acked || pr->lease_ack_tick < lease_floor_tick_) {
      return std::nullopt;
    }
    return LogIndex(pr->lease_ack_tick + 1);
  });
  if (acked == LogIndex{}) return false;
  uint64_t sent = acked.value() - 1;
  // Followers that acked a heartbeat sent at tick `sent` refuse votes for
  // election_timeout of their ticks after receiving it. One tick is lost to
  // quantization on each side, and lease_drift_ticks to tick-rate drift.
  int64_t lease = static_cast<int64_t>(election_timeout_) - 2 - lease_drift_ticks_;
  return lease > 0 && static_cast<int64_t>(ticks_ - sent) < lease;
}

bool Raft::CommittedEntryInCurrentTerm() const {
  return log_.ZeroTermOnError(log_.committed()) == term_;
}

bool Raft::IncreaseUncommittedSize(const std::vector<Entry>& ents) {
  uint64_t s = 0;
  for (const Entry& e : ents) s += e.data.size();
  // Always admit an entry when nothing is uncommitted, so a huge one cannot wedge.
  if (uncommitted_size_ > 0 && s > 0 && uncommitted_size_ + s > max_uncommitted_size_) return false;
  uncommitted_size_ += s;
  return true;
}

void Raft::ReduceUncommittedSize(uint64_t bytes) {
  uncommitted_size_ = bytes > uncommitted_size_ ? 0 : uncommitted_size_ - bytes;
}

bool Raft::AppendEntry(std::vector<Entry> es) {
  LogIndex li = log_.LastIndex();
  for (size_t i = 0; i < es.size(); ++i) {
    es[i].term = term_;
    es[i].index = li + 1 + i;
  }
  if (!IncreaseUncommittedSize(es)) return false;
  li = log_.Append(es);
  // The leader counts its own log as replicated: the application persists a Ready's
  // entries before sending its messages, so no commit index derived from this
  // reaches another node before the entries are durable here.
  if (Progress* self = trk_.Get(id_)) self->MaybeUpdate(li);
  MaybeCommit();
  return true;
}

bool Raft::MaybeCommit() { return log_.MaybeCommit(trk_.Committed(), term_); }

void Raft::AppliedTo(LogIndex index, uint64_t applied_bytes) {
  (void)applied_bytes;  // reserved for apply-side flow control
  log_.AppliedTo(index);
  // Leave a joint config automatically once the change that entered it is applied.
  if (state_ == StateType::kLeader && trk_.config.auto_leave && index >= pending_conf_index_) {
    ConfChange leave;  // empty: leave joint
    Message m;
    m.type = MessageType::kProp;
    Entry e;
    e.type = EntryType::kConfChange;
    e.data = EncodeConfChange(leave);
    m.entries.push_back(std::move(e));
    // Can fail only if a transfer is in progress; retried on the next apply.
    (void)Step(std::move(m));
  }
}

// ---- Roles ----

void Raft::BecomeFollower(Term term, NodeId lead) {
  Reset(term);
  rescue_campaign_ = false;
  lead_ = lead;
  state_ = StateType::kFollower;
}

void Raft::BecomeCandidate() {
  RAFT_CHECK(state_ != StateType::kLeader, "invalid transition [leader -> candidate]");
  Reset(term_ + 1);
  vote_ = id_;
  state_ = StateType::kCandidate;
}

void Raft::BecomePreCandidate() {
  RAFT_CHECK(state_ != StateType::kLeader, "invalid transition [leader -> pre-candidate]");
  // A pre-candidate changes neither term nor vote, so it stays safe to step back.
  trk_.ResetVotes();
  lead_ = kNoNode;
  state_ = StateType::kPreCandidate;
}

void Raft::BecomeLeader() {
  RAFT_CHECK(state_ != StateType::kFollower, "invalid transition [follower -> leader]");
  Reset(term_);
  lead_ = id_;
  state_ = StateType::kLeader;
  if (Progress* self = trk_.Get(id_)) {  // absent when leading as a removed node
    self->BecomeReplicate();
    self->recent_active = true;
  }
  // Conservatively assume the log tail may hold an unapplied conf change.
  pending_conf_index_ = log_.LastIndex();
  // An empty entry of the new term commits everything before it (§5.4.2).
  bool ok = AppendEntry({Entry{}});
  RAFT_CHECK(ok, "empty entry was dropped");
  // The empty entry is not counted against the uncommitted budget.
  uncommitted_size_ = 0;
}

// ---- Ticks ----

void Raft::Tick() {
  ++ticks_;
  if (state_ == StateType::kLeader) {
    last_leader_contact_ = ticks_;
    TickHeartbeat();
  } else {
    TickElection();
  }
}

void Raft::TickElection() {
  ++election_elapsed_;
  if (Promotable() && PastElectionTimeout()) {
    election_elapsed_ = 0;
    Message m;
    m.type = MessageType::kHup;
    m.from = id_;
    (void)Step(std::move(m));
  }
}

void Raft::TickHeartbeat() {
  ++heartbeat_elapsed_;
  ++election_elapsed_;
  if (election_elapsed_ >= election_timeout_) {
    election_elapsed_ = 0;
    if (check_quorum_) {
      Message m;
      m.type = MessageType::kCheckQuorum;
      m.from = id_;
      (void)Step(std::move(m));
    }
    // A transfer that did not finish within an election timeout is abandoned.
    if (state_ == StateType::kLeader && !lead_transferee_.none()) AbortLeaderTransfer();
  }
  if (state_ != StateType::kLeader) return;
  if (heartbeat_elapsed_ >= heartbeat_timeout_) {
    heartbeat_elapsed_ = 0;
    Message m;
    m.type = MessageType::kBeat;
    m.from = id_;
    (void)Step(std::move(m));
  }
}

// ---- Elections ----

void Raft::Hup(CampaignType t) {
  if (state_ == StateType::kLeader) return;
  if (!Promotable()) return;
  // A conf change committed but not applied may change who votes: wait for it.
  if (log_.applied() < log_.committed()) {
    auto ents = log_.Slice(log_.applied() + 1, log_.committed() + 1, kNoLimit);
    RAFT_CHECK(ents.ok(), "cannot read unapplied entries");
    for (const Entry& e : *ents) {
      if (e.type == EntryType::kConfChange) return;
    }
  }
  Campaign(t);
}

void Raft::Campaign(CampaignType t) {
  if (!Promotable() && !(rescue_campaign_ && CanRescueAsRemoved())) return;
  Term term;
  MessageType vote_msg;
  if (t == CampaignType::kPreElection) {
    BecomePreCandidate();
    vote_msg = MessageType::kPreVote;
    // Ask for votes in the next term without moving to it.
    term = term_ + 1;
  } else {
    BecomeCandidate();
    vote_msg = MessageType::kVote;
    term = term_;
  }
  std::vector<NodeId> ids = trk_.VoterNodes();
  for (NodeId id : ids) {
    if (id != id_) continue;
    // Our own vote first: a single-voter group wins at once.
    if (Poll(id_, VoteResponseType(vote_msg), true) == VoteResult::kWon) {
      if (t == CampaignType::kPreElection) {
        Campaign(CampaignType::kElection);
      } else {
        BecomeLeader();
      }
      return;
    }
  }
  for (NodeId id : ids) {
    if (id == id_) continue;
    Message m;
    m.type = vote_msg;
    m.to = id;
    m.term = term;
    m.index = log_.LastIndex();
    m.log_term = log_.LastTerm();
    if (t == CampaignType::kTransfer) m.context = kCampaignTransfer;
    Send(std::move(m));
  }
}

VoteResult Raft::Poll(NodeId id, MessageType t, bool granted) {
  (void)t;
  trk_.RecordVote(id, granted);
  size_t g, r;
  return trk_.TallyVotes(&g, &r);
}

void Raft::HandleVoteRequest(const Message& m) {
  // We can vote for m.from if we already did in this term, or have not voted and know
  // no leader, or (PreVote) the request is for a future term.
  bool can_vote = vote_ == m.from || (vote_.none() && lead_.none()) ||
                  (m.type == MessageType::kPreVote && m.term > term_);
  Message resp;
  resp.to = m.from;
  resp.type = VoteResponseType(m.type);
  if (can_vote && log_.IsUpToDate(m.index, m.log_term)) {
    // The response carries the request's term: for PreVote that is the future term,
    // which the pre-candidate recognizes without either side changing term.
    resp.term = m.term;
    Send(std::move(resp));
    if (m.type == MessageType::kVote) {
      election_elapsed_ = 0;
      vote_ = m.from;
    }
  } else {
    resp.term = term_;
    resp.reject = true;
    Send(std::move(resp));
    if (!log_.IsUpToDate(m.index, m.log_term) && CanRescueAsRemoved() &&
        trk_.config.voters.contains(m.from)) {
      // We were removed (we applied a config without us) but hold a longer log than
      // a member that is campaigning, so it has no leader and may still believe it
      // is in the joint config that needs our vote. It can only win with our vote,
      // which our longer log forbids; we can win with the votes of a majority of our
      // (committed) config. Lead the group through the transition, then hand off.
      rescue_campaign_ = true;
      Campaign(pre_vote_ ? CampaignType::kPreElection : CampaignType::kElection);
      return;
    }
    if (m.type == MessageType::kVote && m.term == term_ && log_.IsUpToDate(m.index, m.log_term)) {
      // We already voted (likely for ourselves) in this term, but the candidate has
      // the better log. Yield: restart our election timer so the candidate gets to
      // campaign again before we do. Otherwise a node with a stale log and config
      // whose timer happens to fire first can win every term's race to our vote.
      election_elapsed_ = 0;
    }
  }
}

// ---- Step: the term rules, then dispatch by role ----

Status Raft::Step(Message m) {
  if (m.term == Term{}) {
    // Local message.
  } else if (m.term > term_) {
    if (m.type == MessageType::kVote || m.type == MessageType::kPreVote) {
      bool force = m.context == kCampaignTransfer;
      if (!force && InLease()) {
        // We heard from a leader within the minimum election timeout: ignore, so a
        // removed or partitioned node cannot disrupt a healthy leader.
        return Status::OK();
      }
    }
    if (m.type == MessageType::kPreVote) {
      // Never change term in response to a PreVote.
    } else if (m.type == MessageType::kPreVoteResp && !m.reject) {
      // A granted PreVote carries the future term; we move to it when we win.
    } else {
      if (m.type == MessageType::kApp || m.type == MessageType::kHeartbeat ||
          m.type == MessageType::kSnap) {
        BecomeFollower(m.term, m.from);
      } else {
        BecomeFollower(m.term, kNoNode);
      }
    }
  } else if (m.term < term_) {
    if (m.type == MessageType::kHeartbeat || m.type == MessageType::kApp) {
      // A stale leader (e.g. healed from a partition) learns our term from this, and
      // steps down, as in the paper. etcd answers only with CheckQuorum or PreVote,
      // but a stale leader we are never asked to vote by (our config is stale, or
      // votes are ignored in a lease) would otherwise never learn of our term.
      Message resp;
      resp.to = m.from;
      resp.type = MessageType::kAppResp;
      Send(std::move(resp));
    } else if (m.type == MessageType::kPreVote || m.type == MessageType::kVote) {
      // Reject with our term (as the paper's RequestVote does), so the candidate
      // catches up with it instead of campaigning in stale terms forever. etcd
      // ignores a stale MsgVote, which can leave a group without a leader when the
      // only voter that can be reached is ahead in term.
      Message resp;
      resp.to = m.from;
      resp.type = VoteResponseType(m.type);
      resp.term = term_;
      resp.reject = true;
      Send(std::move(resp));
    }
    // Other stale messages are ignored.
    return Status::OK();
  }

  switch (m.type) {
    case MessageType::kHup:
      Hup(pre_vote_ ? CampaignType::kPreElection : CampaignType::kElection);
      return Status::OK();
    case MessageType::kVote:
    case MessageType::kPreVote:
      HandleVoteRequest(m);
      return Status::OK();
    default:
      break;
  }
  switch (state_) {
    case StateType::kLeader:
      return StepLeader(m);
    case StateType::kCandidate:
    case StateType::kPreCandidate:
      return StepCandidate(m);
    case StateType::kFollower:
      return StepFollower(m);
  }
  return Status::OK();
}

// ---- Membership ----

Result<ConfState> Raft::ApplyConfChange(const ConfChange& cc) {
  Changer changer(trk_, log_.LastIndex());
  Result<ConfigAndProgress> r = Status::Internal("unset");
  bool auto_leave = false;
  if (cc.LeaveJoint()) {
    r = changer.LeaveJoint();
  } else if (cc.EnterJoint(&auto_leave)) {
    r = changer.EnterJoint(auto_leave, cc.changes);
  } else {
    r = changer.Simple(cc.changes);
  }
  if (!r.ok()) return r.status();
  return SwitchToConfig(std::move(r->first), std::move(r->second));
}

bool Raft::CanRescueAsRemoved() const {
  // Only a node that is not a voter (removed, or demoted to learner) of a settled
  // (non-joint, applied) config.
  return !trk_.config.voters.contains(id_) && !trk_.config.voters.joint() &&
         !trk_.config.voters.incoming.empty() && !log_.HasPendingSnapshot() &&
         state_ != StateType::kLeader && log_.applied() == log_.committed();
}

bool Raft::IsRemovedLeader() const {
  if (state_ != StateType::kLeader) return false;
  const Progress* pr = trk_.Get(id_);
  return pr == nullptr || pr->is_learner;
}

void Raft::MaybeHandOffAfterRemoval() {
  if (!IsRemovedLeader() || !lead_transferee_.none()) return;
  LogIndex last = log_.LastIndex();
  NodeId to;
  for (NodeId id : trk_.config.voters.Ids()) {
    const Progress* pr = trk_.Get(id);
    if (pr == nullptr || pr->match != last) return;
    if (to.none()) to = id;
  }
  if (to.none()) return;
  // Every voter holds our whole log, so any of them wins with any voter's vote,
  // including ours while some still think they are in the joint config.
  SendTimeoutNow(to);
  BecomeFollower(term_, kNoNode);
}

ConfState Raft::SwitchToConfig(TrackerConfig cfg, ProgressMap prs) {
  trk_.config = std::move(cfg);
  trk_.progress = std::move(prs);
  ConfState cs = trk_.GetConfState();
  const Progress* pr = trk_.Get(id_);
  is_learner_ = pr != nullptr && pr->is_learner;
  // A leader that was removed or demoted keeps leading for a while (proposals to it
  // are dropped): the remaining voters may not know yet that the change committed,
  // and while they believe they are in the joint config they need our vote. It hands
  // leadership to a caught-up voter as soon as all voters hold its whole log
  // (MaybeHandOffAfterRemoval).
  if (state_ != StateType::kLeader || cs.voters.empty()) return cs;
  // The quorum may have shrunk: commit what it now covers, and catch up new members.
  if (MaybeCommit()) {
    BcastAppend();
  } else {
    for (auto& [id, p] : trk_.progress) {
      if (id == id_) continue;
      MaybeSendAppend(id, false);
    }
  }
  if (!lead_transferee_.none() && !trk_.config.voters.contains(lead_transferee_))
    AbortLeaderTransfer();
  return cs;
}

}  // namespace gojodb::consensus
