#include "core/consensus/raw_node.h"

#include "core/consensus/check.h"
#include "core/consensus/codec.h"

namespace gojodb::consensus {

bool Ready::ContainsUpdates() const {
  return soft_state.has_value() || !hard_state.empty() || !snapshot.empty() || !entries.empty() ||
         !committed_entries.empty() || !messages.empty() || !read_states.empty();
}

RawNode::RawNode(std::unique_ptr<Raft> r) : raft_(std::move(r)) {
  prev_soft_ = raft_->GetSoftState();
  prev_hard_ = raft_->GetHardState();
}

Result<std::unique_ptr<RawNode>> RawNode::Create(const Config& c) {
  ASSIGN_OR_RETURN(auto r, Raft::Create(c));
  return std::unique_ptr<RawNode>(new RawNode(std::move(r)));
}

void RawNode::Tick() { raft_->Tick(); }

Status RawNode::Campaign() {
  Message m;
  m.type = MessageType::kHup;
  return raft_->Step(std::move(m));
}

Status RawNode::Propose(std::string data) {
  Message m;
  m.type = MessageType::kProp;
  m.from = raft_->id();
  Entry e;
  e.data = std::move(data);
  m.entries.push_back(std::move(e));
  return raft_->Step(std::move(m));
}

Status RawNode::ProposeConfChange(const ConfChange& cc) {
  Message m;
  m.type = MessageType::kProp;
  m.from = raft_->id();
  Entry e;
  e.type = EntryType::kConfChange;
  e.data = EncodeConfChange(cc);
  m.entries.push_back(std::move(e));
  return raft_->Step(std::move(m));
}

Result<ConfState> RawNode::ApplyConfChange(const ConfChange& cc) {
  return raft_->ApplyConfChange(cc);
}

Status RawNode::Step(Message m) {
  if (IsLocalMessage(m.type))
    return Status::InvalidArgument("consensus: cannot step a local message");
  if (IsResponseMessage(m.type) && raft_->tracker().Get(m.from) == nullptr) {
    return Status::NotFound("consensus: cannot step a response from an unknown peer");
  }
  return raft_->Step(std::move(m));
}

Status RawNode::ReadIndex(std::string context) {
  Message m;
  m.type = MessageType::kReadIndex;
  m.context = std::move(context);
  return raft_->Step(std::move(m));
}

Status RawNode::TransferLeadership(NodeId transferee) {
  Message m;
  m.type = MessageType::kTransferLeader;
  m.from = transferee;
  m.to = raft_->id();
  return raft_->Step(std::move(m));
}

void RawNode::ReportUnreachable(NodeId id) {
  Message m;
  m.type = MessageType::kUnreachable;
  m.from = id;
  (void)raft_->Step(std::move(m));
}

void RawNode::ReportSnapshot(NodeId id, SnapshotStatus status) {
  Message m;
  m.type = MessageType::kSnapStatus;
  m.from = id;
  m.reject = status == SnapshotStatus::kFailure;
  (void)raft_->Step(std::move(m));
}

bool RawNode::HasReady() const {
  const Raft& r = *raft_;
  if (r.GetSoftState() != prev_soft_) return true;
  HardState hs = r.GetHardState();
  if (!hs.empty() && hs != prev_hard_) return true;
  if (r.log().HasPendingSnapshot()) return true;
  if (!r.log().unstable().entries().empty() || r.log().HasNextCommittedEntries()) return true;
  if (!raft_->msgs().empty() || !raft_->read_states().empty()) return true;
  return false;
}

Ready RawNode::GetReady() {
  RAFT_CHECK(!pending_.has_value(), "GetReady called before Advance of the previous Ready");
  Raft& r = *raft_;
  Ready rd;
  rd.entries = r.log().UnstableEntries();
  rd.committed_entries = r.log().NextCommittedEntries();
  rd.messages.swap(r.msgs());
  SoftState ss = r.GetSoftState();
  if (ss != prev_soft_) {
    rd.soft_state = ss;
    prev_soft_ = ss;
  }
  HardState hs = r.GetHardState();
  if (hs != prev_hard_) rd.hard_state = hs;
  if (r.log().HasPendingSnapshot()) rd.snapshot = *r.log().PendingSnapshot();
  rd.read_states.swap(r.read_states());
  rd.must_sync =
      !rd.entries.empty() || !rd.snapshot.empty() ||
      (!rd.hard_state.empty() && (hs.term != prev_hard_.term || hs.vote != prev_hard_.vote));
  if (!rd.hard_state.empty()) prev_hard_ = hs;
  Handed h;
  if (!rd.entries.empty())
    h.last_entry = Entry{rd.entries.back().term, rd.entries.back().index, EntryType::kNormal, {}};
  if (!rd.committed_entries.empty()) h.last_committed = rd.committed_entries.back().index;
  for (const Entry& e : rd.committed_entries) h.committed_bytes += e.data.size();
  h.snapshot_index = rd.snapshot.metadata.index;
  pending_ = h;
  return rd;
}

void RawNode::Advance() {
  RAFT_CHECK(pending_.has_value(), "Advance called without an outstanding Ready");
  Handed h = *pending_;
  pending_.reset();
  Raft& r = *raft_;
  if (h.snapshot_index != LogIndex{}) r.mutable_log().StableSnapTo(h.snapshot_index);
  if (h.last_entry) r.mutable_log().StableTo(h.last_entry->index, h.last_entry->term);
  // The application applied the snapshot, then the committed entries after it.
  LogIndex applied = h.last_committed != LogIndex{} ? h.last_committed : h.snapshot_index;
  if (applied != LogIndex{}) {
    r.ReduceUncommittedSize(h.committed_bytes);
    r.AppliedTo(applied, h.committed_bytes);
  }
}

NodeStatus RawNode::GetStatus() const {
  const Raft& r = *raft_;
  NodeStatus s;
  s.id = r.id();
  s.hard_state = r.GetHardState();
  s.soft_state = r.GetSoftState();
  s.applied = r.log().applied();
  s.lead_transferee = r.lead_transferee();
  s.conf_state = r.tracker().GetConfState();
  if (r.state() == StateType::kLeader) {
    for (const auto& [id, pr] : r.tracker().progress) {
      s.progress.push_back(
          MemberStatus{id, pr.match, pr.next, pr.state, pr.is_learner, pr.recent_active});
    }
  }
  return s;
}

}  // namespace gojodb::consensus
