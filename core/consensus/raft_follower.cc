// Raft core, follower and candidate roles: elections from the candidate side, and
// accepting entries, heartbeats and snapshots from a leader.
#include "core/consensus/check.h"
#include "core/consensus/raft.h"

namespace gojodb::consensus {

Status Raft::StepCandidate(Message& m) {
  // A pre-candidate only counts PreVote responses, a candidate only Vote responses.
  MessageType my_resp =
      state_ == StateType::kPreCandidate ? MessageType::kPreVoteResp : MessageType::kVoteResp;
  switch (m.type) {
    case MessageType::kProp:
      return ErrProposalDropped();
    case MessageType::kApp:
      // A leader of our term exists: it won, we lost.
      BecomeFollower(m.term, m.from);
      HeardFromLeader(m.from);
      HandleAppendEntries(m);
      return Status::OK();
    case MessageType::kHeartbeat:
      BecomeFollower(m.term, m.from);
      HeardFromLeader(m.from);
      HandleHeartbeat(m);
      return Status::OK();
    case MessageType::kSnap:
      BecomeFollower(m.term, m.from);
      HeardFromLeader(m.from);
      HandleSnapshot(m);
      return Status::OK();
    case MessageType::kTimeoutNow:
      return Status::OK();  // already campaigning
    default:
      break;
  }
  if (m.type != my_resp) return Status::OK();
  switch (Poll(m.from, m.type, !m.reject)) {
    case VoteResult::kWon:
      if (state_ == StateType::kPreCandidate) {
        Campaign(CampaignType::kElection);
      } else {
        BecomeLeader();
        BcastAppend();
      }
      break;
    case VoteResult::kLost:
      // A rejection carries the voter's term, which may be ours or newer; the term
      // rules in Step already moved us to a newer one.
      BecomeFollower(term_, kNoNode);
      break;
    case VoteResult::kPending:
      break;
  }
  return Status::OK();
}

Status Raft::StepFollower(Message& m) {
  switch (m.type) {
    case MessageType::kProp:
      if (lead_.none()) return ErrProposalDropped();
      if (disable_proposal_forwarding_) return ErrProposalDropped();
      m.to = lead_;
      Send(std::move(m));
      return Status::OK();
    case MessageType::kApp:
      HeardFromLeader(m.from);
      HandleAppendEntries(m);
      return Status::OK();
    case MessageType::kHeartbeat:
      HeardFromLeader(m.from);
      HandleHeartbeat(m);
      return Status::OK();
    case MessageType::kSnap:
      HeardFromLeader(m.from);
      HandleSnapshot(m);
      return Status::OK();
    case MessageType::kTransferLeader:
      if (lead_.none()) return ErrProposalDropped();
      m.to = lead_;
      m.term = Term{};
      Send(std::move(m));
      return Status::OK();
    case MessageType::kTimeoutNow:
      // The leader asks us to take over: campaign now, bypassing leases and PreVote.
      Hup(CampaignType::kTransfer);
      return Status::OK();
    case MessageType::kReadIndex:
      if (lead_.none()) return ErrProposalDropped();
      m.to = lead_;
      Send(std::move(m));
      return Status::OK();
    case MessageType::kReadIndexResp:
      read_states_.push_back(ReadState{m.index, m.context});
      return Status::OK();
    default:
      return Status::OK();
  }
}

void Raft::HandleAppendEntries(const Message& m) {
  Message resp;
  resp.to = m.from;
  resp.type = MessageType::kAppResp;
  if (m.index < log_.committed()) {
    // Everything up to our commit index matches the leader's (Log Matching): ack it.
    resp.index = log_.committed();
    Send(std::move(resp));
    return;
  }
  if (auto last_new = log_.MaybeAppend(m.index, m.log_term, m.commit, m.entries)) {
    resp.index = *last_new;
    Send(std::move(resp));
    return;
  }
  // Mismatch at m.index. Hint the largest index <= m.index whose term is <= the
  // leader's term there, so the leader can skip a whole divergent term at once.
  LogIndex hint_index = std::min(m.index, log_.LastIndex());
  auto [hint, hint_term] = log_.FindConflictByTerm(hint_index, m.log_term);
  resp.index = m.index;
  resp.reject = true;
  resp.reject_hint = hint;
  resp.log_term = hint_term;
  Send(std::move(resp));
}

void Raft::HandleHeartbeat(const Message& m) {
  log_.CommitTo(m.commit);
  Message resp;
  resp.to = m.from;
  resp.type = MessageType::kHeartbeatResp;
  resp.context = m.context;
  resp.index = m.index;
  Send(std::move(resp));
}

void Raft::HandleSnapshot(const Message& m) {
  Message resp;
  resp.to = m.from;
  resp.type = MessageType::kAppResp;
  if (m.snapshot && Restore(*m.snapshot)) {
    resp.index = log_.LastIndex();
  } else {
    resp.index = log_.committed();
  }
  Send(std::move(resp));
}

bool Raft::Restore(const Snapshot& s) {
  if (s.metadata.index <= log_.committed()) return false;
  if (state_ != StateType::kFollower) {
    // Only a leader of our term sends snapshots, so we cannot be leader or candidate
    // here; be defensive rather than corrupt the log.
    BecomeFollower(term_ + 1, kNoNode);
    return false;
  }
  // The snapshot's config may predate our own addition to the group (the leader's
  // latest snapshot was taken before it): install it anyway. Like a node that starts
  // empty, we are not promotable until the entries after the snapshot, which add us,
  // are applied. (etcd refuses such a snapshot, which leaves a node added after the
  // leader's last snapshot unable to catch up until a newer one is taken.)
  const ConfState& cs = s.metadata.conf_state;
  // If our log already holds the snapshot's last entry, just fast-forward the commit.
  if (log_.MatchTerm(s.metadata.index, s.metadata.term)) {
    log_.CommitTo(s.metadata.index);
    return false;
  }
  log_.Restore(s);
  auto cp = RestoreConfig(cs, log_.LastIndex(), trk_.max_inflight(), trk_.max_inflight_bytes());
  RAFT_CHECK(cp.ok(), "unable to restore config from a snapshot");
  ConfState got = SwitchToConfig(std::move(cp->first), std::move(cp->second));
  RAFT_CHECK(got.Equivalent(cs), "restored config differs from the snapshot's");
  // Self's progress starts at the snapshot.
  if (Progress* pr = trk_.Get(id_)) pr->MaybeUpdate(log_.LastIndex());
  return true;
}

}  // namespace gojodb::consensus
