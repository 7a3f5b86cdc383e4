// Raft: the protocol state machine of one node. Pure and deterministic: no threads,
// no I/O, no clock; messages to send and state to persist accumulate in fields that
// RawNode turns into a Ready. Most users want RawNode (raw_node.h), not this class.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/consensus/confchange.h"
#include "core/consensus/config.h"
#include "core/consensus/raft_log.h"
#include "core/consensus/read_only.h"
#include "core/consensus/tracker.h"

namespace gojodb::consensus {

// Returned when a proposal cannot be accepted now (no leader, a transfer in progress,
// the uncommitted budget is full); the caller may retry.
Status ErrProposalDropped();
bool IsProposalDropped(const Status& s);

enum class CampaignType : uint8_t { kPreElection, kElection, kTransfer };

struct SoftState {
  NodeId lead;
  StateType state = StateType::kFollower;
  bool operator==(const SoftState&) const = default;
};

// Not thread-safe: one thread drives a node.
class Raft {
 public:
  // Builds a node from its storage (hard state, membership, log). Errors if the
  // config is invalid or storage is inconsistent.
  static Result<std::unique_ptr<Raft>> Create(const Config& c);

  // Processes one message, local or from a peer.
  Status Step(Message m);
  // Advances the logical clock by one tick.
  void Tick();

  // Applies a committed ConfChange to the tracker; returns the new ConfState.
  Result<ConfState> ApplyConfChange(const ConfChange& cc);

  // Called after the application persisted/applied what a Ready handed out.
  void AppliedTo(LogIndex index, uint64_t applied_bytes);
  void ReduceUncommittedSize(uint64_t bytes);

  SoftState GetSoftState() const { return {lead_, state_}; }
  HardState GetHardState() const { return {term_, vote_, log_.committed()}; }

  NodeId id() const { return id_; }
  Term term() const { return term_; }
  NodeId vote() const { return vote_; }
  NodeId lead() const { return lead_; }
  StateType state() const { return state_; }
  bool is_learner() const { return is_learner_; }
  NodeId lead_transferee() const { return lead_transferee_; }
  LogIndex pending_conf_index() const { return pending_conf_index_; }
  const RaftLog& log() const { return log_; }
  RaftLog& mutable_log() { return log_; }
  const ProgressTracker& tracker() const { return trk_; }
  ProgressTracker& mutable_tracker() { return trk_; }
  int randomized_election_timeout() const { return randomized_election_timeout_; }
  int election_elapsed() const { return election_elapsed_; }
  // Whether the leader holds a lease valid at this tick (lease reads only).
  bool HasValidLease() const;
  // Whether the commit index is at an entry of this term (a new leader's first entry
  // committed: everything committed before its term is below it).
  bool CommittedEntryInCurrentTerm() const;
  // The driver's word that ticks fell behind real time (its thread was held up): the
  // lease, counted in ticks, may have run out meanwhile. Until a quorum acks a
  // heartbeat sent at a later tick, the leader holds no lease.
  void VoidLease() { lease_floor_tick_ = ticks_ + 1; }

  // Output accumulated since last taken.
  std::vector<Message>& msgs() { return msgs_; }
  std::vector<ReadState>& read_states() { return read_states_; }

  // Test hooks mirroring etcd's: force a state transition.
  void BecomeFollower(Term term, NodeId lead);
  void BecomeCandidate();
  void BecomePreCandidate();
  void BecomeLeader();
  void SetRandomizedElectionTimeout(int t) { randomized_election_timeout_ = t; }
  bool Promotable() const;

 private:
  explicit Raft(const Config& c);
  Status Init(const Config& c);

  // Outbound.
  void Send(Message m);
  void SendAppend(NodeId to) { MaybeSendAppend(to, true); }
  bool MaybeSendAppend(NodeId to, bool send_if_empty);
  bool MaybeSendSnapshot(NodeId to, Progress* pr);
  void SendHeartbeat(NodeId to, const std::string& ctx);
  void BcastAppend();
  void BcastHeartbeat();
  void BcastHeartbeatWithContext(const std::string& ctx);
  void SendTimeoutNow(NodeId to);

  // State.
  void Reset(Term term);
  bool AppendEntry(std::vector<Entry> es);
  bool MaybeCommit();
  void ResetRandomizedElectionTimeout();
  bool PastElectionTimeout() const { return election_elapsed_ >= randomized_election_timeout_; }
  void AbortLeaderTransfer() { lead_transferee_ = kNoNode; }
  bool InLease() const;
  void HeardFromLeader(NodeId lead);
  void LoadState(const HardState& hs);
  ConfState SwitchToConfig(TrackerConfig cfg, ProgressMap prs);
  bool IsRemovedLeader() const;
  bool CanRescueAsRemoved() const;
  void MaybeHandOffAfterRemoval();
  bool IncreaseUncommittedSize(const std::vector<Entry>& ents);

  // Elections.
  void TickElection();
  void TickHeartbeat();
  void Hup(CampaignType t);
  void Campaign(CampaignType t);
  VoteResult Poll(NodeId id, MessageType t, bool granted);
  void HandleVoteRequest(const Message& m);

  // Per-role message handling (raft_leader.cc, raft_follower.cc).
  Status StepLeader(Message& m);
  Status StepCandidate(Message& m);
  Status StepFollower(Message& m);
  Status StepLeaderProposal(Message& m);
  void StepLeaderReadIndex(Message& m);
  void HandleAppendResponse(const Message& m, Progress* pr);
  void HandleHeartbeatResponse(const Message& m, Progress* pr);
  void HandleAppendEntries(const Message& m);
  void HandleHeartbeat(const Message& m);
  void HandleSnapshot(const Message& m);
  bool Restore(const Snapshot& s);
  void SendReadIndexResponse(const Message& req, LogIndex index);
  void ReleasePendingReadIndexMessages();
  Message ResponseToReadIndex(const Message& req, LogIndex index);

  NodeId id_;
  Term term_;
  NodeId vote_;
  std::vector<ReadState> read_states_;
  RaftLog log_;
  uint64_t max_msg_size_;
  uint64_t max_uncommitted_size_;
  ProgressTracker trk_;
  StateType state_ = StateType::kFollower;
  bool is_learner_ = false;
  std::vector<Message> msgs_;
  NodeId lead_;
  NodeId lead_transferee_;
  // Only one conf change may be pending (in the log, unapplied) at a time.
  LogIndex pending_conf_index_;
  uint64_t uncommitted_size_ = 0;
  ReadOnly read_only_;
  ReadOnlyOption read_only_option_;
  std::vector<Message> pending_read_index_messages_;

  int election_elapsed_ = 0;
  int heartbeat_elapsed_ = 0;
  bool check_quorum_;
  bool pre_vote_;
  bool disable_proposal_forwarding_;
  int heartbeat_timeout_;
  int election_timeout_;
  int randomized_election_timeout_ = 0;
  int lease_drift_ticks_;

  // Ticks since this node started (the logical clock of lease accounting).
  uint64_t ticks_ = 0;
  // ticks_ when we last heard from a leader (or were leader). Unlike
  // election_elapsed_, this is not reset by a term change, so a follower honours a
  // leader's lease even after learning of a higher term from a failed candidate.
  uint64_t last_leader_contact_ = 0;
  // Lease reads are disabled for the rest of this term once leadership was offered
  // to another node (TimeoutNow bypasses followers' leases).
  bool lease_revoked_ = false;
  // Acks of heartbeats sent before this tick do not count toward the lease (VoidLease).
  uint64_t lease_floor_tick_ = 0;
  // Campaigning as a removed node to unblock the group (see HandleVoteRequest).
  bool rescue_campaign_ = false;
  uint64_t rng_state_;
};

}  // namespace gojodb::consensus
