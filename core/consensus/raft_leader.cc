// Raft core, leader role: replication (pipelined, batched, flow-controlled),
// snapshots to lagging followers, heartbeats, proposals, ReadIndex and leases, and
// leadership transfer.
#include <algorithm>

#include "core/consensus/check.h"
#include "core/consensus/codec.h"
#include "core/consensus/raft.h"

namespace gojodb::consensus {

bool Raft::MaybeSendAppend(NodeId to, bool send_if_empty) {
  Progress* pr = trk_.Get(to);
  if (pr == nullptr || pr->IsPaused()) return false;
  LogIndex prev_index = pr->next - 1;
  auto prev_term = log_.TermAt(prev_index);
  Result<std::vector<Entry>> ents = std::vector<Entry>{};
  // In probe state one entry is enough to find the match point; do not ship a batch
  // that will likely be rejected.
  // A full window in kReplicate still lets an empty MsgApp through (on a heartbeat
  // response): if every message in the window was lost, its ack or rejection is
  // what unblocks replication.
  bool window_full = pr->state == ProgressState::kReplicate && pr->inflights.Full();
  if (prev_term.ok() && !window_full) {
    uint64_t limit = pr->state == ProgressState::kReplicate ? max_msg_size_ : 1;
    ents = log_.EntriesFrom(pr->next, limit);
    if (ents.ok() && ents->empty() && !send_if_empty) return false;
  }
  if (window_full && !send_if_empty) return false;
  if (!prev_term.ok() || !ents.ok()) {
    // The entries the follower needs were compacted: send a snapshot instead.
    return MaybeSendSnapshot(to, pr);
  }
  Message m;
  m.to = to;
  m.type = MessageType::kApp;
  m.index = prev_index;
  m.log_term = *prev_term;
  m.entries = std::move(ents).value();
  m.commit = log_.committed();
  uint64_t bytes = 0;
  for (const Entry& e : m.entries) bytes += e.ByteSize();
  pr->SentEntries(m.entries.size(), bytes);
  Send(std::move(m));
  return true;
}

bool Raft::MaybeSendSnapshot(NodeId to, Progress* pr) {
  if (!pr->recent_active) return false;  // do not ship a snapshot to a node that is down
  auto snap = log_.GetSnapshot();
  if (!snap.ok()) {
    RAFT_CHECK(IsSnapshotTemporarilyUnavailable(snap.status()),
               "unexpected error getting a snapshot");
    return false;
  }
  RAFT_CHECK(!snap->empty(), "need a non-empty snapshot");
  LogIndex sindex = snap->metadata.index;
  pr->BecomeSnapshot(sindex);
  Message m;
  m.to = to;
  m.type = MessageType::kSnap;
  m.snapshot = std::move(snap).value();
  Send(std::move(m));
  return true;
}

void Raft::SendHeartbeat(NodeId to, const std::string& ctx) {
  // Never advance a follower's commit beyond what it is known to hold: it may not have
  // the entries yet.
  const Progress* pr = trk_.Get(to);
  Message m;
  m.to = to;
  m.type = MessageType::kHeartbeat;
  m.commit = std::min(pr->match, log_.committed());
  m.index = LogIndex(ticks_);  // echoed back; lease accounting
  m.context = ctx;
  Send(std::move(m));
}

void Raft::BcastAppend() {
  for (auto& [id, pr] : trk_.progress) {
    if (id == id_) continue;
    SendAppend(id);
  }
}

void Raft::BcastHeartbeat() { BcastHeartbeatWithContext(read_only_.LastPendingRequestContext()); }

void Raft::BcastHeartbeatWithContext(const std::string& ctx) {
  for (auto& [id, pr] : trk_.progress) {
    if (id == id_) continue;
    SendHeartbeat(id, ctx);
  }
}

void Raft::SendTimeoutNow(NodeId to) {
  // The transferee will win an election that bypasses followers' leases, so our own
  // lease is void from here on in this term.
  lease_revoked_ = true;
  Message m;
  m.to = to;
  m.type = MessageType::kTimeoutNow;
  Send(std::move(m));
}

Status Raft::StepLeaderProposal(Message& m) {
  if (m.entries.empty()) return Status::InvalidArgument("consensus: stepped empty MsgProp");
  if (IsRemovedLeader()) {
    // Removed or demoted while leader: it only finishes replicating, then hands off.
    return ErrProposalDropped();
  }
  if (!lead_transferee_.none()) return ErrProposalDropped();
  for (size_t i = 0; i < m.entries.size(); ++i) {
    Entry& e = m.entries[i];
    if (e.type != EntryType::kConfChange) continue;
    auto cc = DecodeConfChange(e.data);
    if (!cc.ok()) return cc.status();
    bool already_pending = pending_conf_index_ > log_.applied();
    bool already_joint = trk_.config.voters.joint();
    bool wants_leave_joint = cc->LeaveJoint();
    const char* refused = nullptr;
    if (already_pending) {
      refused = "possible unapplied conf change";
    } else if (already_joint && !wants_leave_joint) {
      refused = "must transition out of joint config first";
    } else if (!already_joint && wants_leave_joint) {
      refused = "not in joint state; refusing empty conf change";
    }
    if (refused != nullptr) {
      // Keep the slot (the proposer learns the outcome when it is applied) but make it
      // a no-op.
      e = Entry{};
    } else {
      pending_conf_index_ = log_.LastIndex() + i + 1;
    }
  }
  if (!AppendEntry(std::move(m.entries))) return ErrProposalDropped();
  BcastAppend();
  return Status::OK();
}

Message Raft::ResponseToReadIndex(const Message& req, LogIndex index) {
  if (req.from.none() || req.from == id_) {
    read_states_.push_back(ReadState{index, req.context});
    return Message{};
  }
  Message resp;
  resp.type = MessageType::kReadIndexResp;
  resp.to = req.from;
  resp.index = index;
  resp.context = req.context;
  return resp;
}

void Raft::SendReadIndexResponse(const Message& req, LogIndex index) {
  Message resp = ResponseToReadIndex(req, index);
  if (!resp.to.none()) Send(std::move(resp));
}

void Raft::StepLeaderReadIndex(Message& m) {
  if (trk_.IsSingleton() && trk_.config.voters.incoming.contains(id_)) {
    // We are the only voter, so nobody else can be leader: the commit index is
    // linearizable as is. (A removed leader whose config has one other voter must
    // not take this shortcut: that voter may already lead.)
    SendReadIndexResponse(m, log_.committed());
    return;
  }
  // Until an entry of this term is committed, our commit index may lag the true one
  // (§6.4): postpone the read.
  if (!CommittedEntryInCurrentTerm()) {
    pending_read_index_messages_.push_back(std::move(m));
    return;
  }
  if (HasValidLease()) {
    SendReadIndexResponse(m, log_.committed());
    return;
  }
  read_only_.AddRequest(log_.committed(), m);
  // Our own ack counts; a single voter group confirmed above already.
  read_only_.RecvAck(id_, m.context);
  BcastHeartbeatWithContext(m.context);
}

void Raft::ReleasePendingReadIndexMessages() {
  if (pending_read_index_messages_.empty() || !CommittedEntryInCurrentTerm()) return;
  std::vector<Message> pending;
  pending.swap(pending_read_index_messages_);
  for (Message& m : pending) StepLeaderReadIndex(m);
}

void Raft::HandleAppendResponse(const Message& m, Progress* pr) {
  pr->recent_active = true;
  if (m.reject) {
    // The follower hints where its log could match: the last index whose term is <=
    // the term we probed with. Skip to the same point in our log, so a whole term of
    // divergent entries costs one round trip.
    LogIndex next_probe = m.reject_hint;
    if (m.log_term > Term{}) next_probe = log_.FindConflictByTerm(m.reject_hint, m.log_term).first;
    if (pr->MaybeDecrTo(m.index, next_probe)) {
      if (pr->state == ProgressState::kReplicate) pr->BecomeProbe();
      SendAppend(m.from);
    }
    return;
  }
  // An ack at the known match point still ends a probe: the follower is in sync.
  bool in_sync_probe = pr->match == m.index && pr->state == ProgressState::kProbe;
  if (!pr->MaybeUpdate(m.index) && !in_sync_probe) return;  // stale or duplicate
  switch (pr->state) {
    case ProgressState::kProbe:
      pr->BecomeReplicate();
      break;
    case ProgressState::kSnapshot:
      // The snapshot (or a normal append overlapping it) brought the follower close
      // enough to resume from the log.
      if (pr->match + 1 >= log_.FirstIndex()) {
        pr->BecomeProbe();
        pr->BecomeReplicate();
      }
      break;
    case ProgressState::kReplicate:
      pr->inflights.FreeLE(m.index);
      break;
  }
  if (MaybeCommit()) {
    ReleasePendingReadIndexMessages();
    BcastAppend();
  } else if (m.from != id_) {
    // Keep the pipeline full: send as much as the window allows.
    while (MaybeSendAppend(m.from, false)) {
    }
  }
  if (m.from == lead_transferee_ && pr->match == log_.LastIndex()) SendTimeoutNow(m.from);
  MaybeHandOffAfterRemoval();
}

void Raft::HandleHeartbeatResponse(const Message& m, Progress* pr) {
  pr->recent_active = true;
  pr->msg_app_flow_paused = false;
  if (!pr->lease_acked || pr->lease_ack_tick < m.index.value()) {
    pr->lease_ack_tick = m.index.value();
    pr->lease_acked = true;
  }
  if (pr->match < log_.LastIndex() || pr->state == ProgressState::kProbe) SendAppend(m.from);
  MaybeHandOffAfterRemoval();
  if (state_ != StateType::kLeader) return;
  if (m.context.empty()) return;
  const std::map<NodeId, bool>* acks = read_only_.RecvAck(m.from, m.context);
  if (acks == nullptr || trk_.config.voters.Vote(*acks) != VoteResult::kWon) return;
  for (ReadIndexStatus& rs : read_only_.Advance(m.context)) SendReadIndexResponse(rs.req, rs.index);
}

Status Raft::StepLeader(Message& m) {
  switch (m.type) {
    case MessageType::kBeat:
      BcastHeartbeat();
      return Status::OK();
    case MessageType::kCheckQuorum: {
      if (!trk_.QuorumActive()) {
        // Lost touch with a quorum: stop acting as leader so clients go elsewhere.
        BecomeFollower(term_, kNoNode);
        return Status::OK();
      }
      for (auto& [id, pr] : trk_.progress) pr.recent_active = id == id_;
      return Status::OK();
    }
    case MessageType::kProp:
      return StepLeaderProposal(m);
    case MessageType::kReadIndex:
      StepLeaderReadIndex(m);
      return Status::OK();
    default:
      break;
  }
  Progress* pr = trk_.Get(m.from);
  if (pr == nullptr) return Status::OK();  // from a node not (or no longer) in the config
  switch (m.type) {
    case MessageType::kAppResp:
      HandleAppendResponse(m, pr);
      break;
    case MessageType::kHeartbeatResp:
      HandleHeartbeatResponse(m, pr);
      break;
    case MessageType::kSnapStatus:
      if (pr->state != ProgressState::kSnapshot) break;
      if (m.reject) pr->pending_snapshot = LogIndex{};
      // Probe after the snapshot (or retry it, on failure); wait for a heartbeat
      // response before sending, so a failing transport is not flooded.
      pr->BecomeProbe();
      pr->msg_app_flow_paused = true;
      break;
    case MessageType::kUnreachable:
      // Optimistic pipelining was wasted: go back to probing.
      if (pr->state == ProgressState::kReplicate) pr->BecomeProbe();
      break;
    case MessageType::kTransferLeader: {
      if (pr->is_learner) break;  // a learner cannot lead
      NodeId transferee = m.from;
      if (!lead_transferee_.none()) {
        if (lead_transferee_ == transferee) break;  // already in progress
        AbortLeaderTransfer();
      }
      if (transferee == id_) break;  // already leader
      // The transfer must finish within an election timeout.
      election_elapsed_ = 0;
      lead_transferee_ = transferee;
      if (pr->match == log_.LastIndex()) {
        SendTimeoutNow(transferee);
      } else {
        SendAppend(transferee);
      }
      break;
    }
    default:
      break;
  }
  return Status::OK();
}

}  // namespace gojodb::consensus
