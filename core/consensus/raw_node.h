// RawNode: the interface of the Raft library. One RawNode is one member of one Raft
// group. It is a pure state machine: the application feeds it ticks, messages and
// proposals, and in return takes Ready batches of work to do (persist, send, apply),
// reporting completion with Advance(). See docs/architecture/consensus.md.
//
// Thread-safety: none; one thread drives a RawNode (several RawNodes may be driven by
// different threads).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/consensus/raft.h"

namespace gojodb::consensus {

// A batch of work. Handle it in this order:
//  1. Persist hard_state, entries and snapshot (install the snapshot first); if
//     must_sync, fsync before step 2.
//  2. Send messages. (Everything they depend on is now durable.)
//  3. Apply the snapshot to the state machine, then committed_entries in order
//     (calling ApplyConfChange for kConfChange entries).
//  4. Call Advance().
struct Ready {
  // Leader and role, when they changed since the last Ready.
  std::optional<SoftState> soft_state;
  // Empty when unchanged since the last Ready.
  HardState hard_state;
  std::vector<ReadState> read_states;
  // To append to stable storage (truncating any conflicting suffix first).
  std::vector<Entry> entries;
  // To install (empty() when none).
  Snapshot snapshot;
  // Committed and ready to apply. They may overlap `entries`: persist first.
  std::vector<Entry> committed_entries;
  std::vector<Message> messages;
  // Whether hard_state/entries/snapshot must be fsynced before messages are sent. A
  // commit-index-only change needs no sync: it can be recomputed after a crash.
  bool must_sync = false;

  bool ContainsUpdates() const;
};

enum class SnapshotStatus : uint8_t { kFinish, kFailure };

// Progress of one member as seen by a leader.
struct MemberStatus {
  NodeId id;
  LogIndex match;
  LogIndex next;
  ProgressState state;
  bool is_learner;
  bool recent_active;
};

struct NodeStatus {
  NodeId id;
  HardState hard_state;
  SoftState soft_state;
  LogIndex applied;
  NodeId lead_transferee;
  ConfState conf_state;
  std::vector<MemberStatus> progress;  // leader only
};

class RawNode {
 public:
  // Builds a node over storage (which may hold state from a previous run).
  static Result<std::unique_ptr<RawNode>> Create(const Config& c);

  // Advances the logical clock by one tick (the application decides its length).
  void Tick();
  // Starts an election now (as if the election timeout elapsed).
  Status Campaign();
  // Proposes data to be appended to the log. ErrProposalDropped if it cannot be
  // accepted now; acceptance does not mean it will commit.
  Status Propose(std::string data);
  // Proposes a membership change; once committed, the application must call
  // ApplyConfChange when applying the entry.
  Status ProposeConfChange(const ConfChange& cc);
  // Applies a committed membership change; returns the new membership.
  Result<ConfState> ApplyConfChange(const ConfChange& cc);
  // Feeds a message received from a peer. Local message types are refused, as are
  // responses from nodes that are not members.
  Status Step(Message m);
  // Requests a linearizable read. When safe, a ReadState with the same context is
  // returned in a Ready; the read may be served once index is applied.
  Status ReadIndex(std::string context);
  // Asks the leader to hand leadership to `transferee`.
  Status TransferLeadership(NodeId transferee);
  // The transport could not reach `id`; the leader backs off replication to it.
  void ReportUnreachable(NodeId id);
  // Outcome of sending a snapshot to `id`.
  void ReportSnapshot(NodeId id, SnapshotStatus status);

  bool HasReady() const;
  // Takes the pending work. Call Advance() once it is handled, before the next
  // GetReady().
  Ready GetReady();
  // Reports that the last Ready was handled.
  void Advance();

  NodeStatus GetStatus() const;
  // The underlying state machine, for tests and diagnostics.
  Raft& raft() { return *raft_; }
  const Raft& raft() const { return *raft_; }

 private:
  explicit RawNode(std::unique_ptr<Raft> r);

  std::unique_ptr<Raft> raft_;
  SoftState prev_soft_;
  HardState prev_hard_;
  // What the outstanding Ready handed out, as Advance needs it.
  struct Handed {
    std::optional<Entry> last_entry;  // without data
    LogIndex last_committed;
    uint64_t committed_bytes = 0;
    LogIndex snapshot_index;
  };
  std::optional<Handed> pending_;
};

}  // namespace gojodb::consensus
