// The data the Raft core exchanges: log entries, hard state, membership, snapshots and
// messages. Plain structs with no serialization dependency; codec.h encodes them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/consensus/types.h"

namespace gojodb::consensus {

enum class EntryType : uint8_t {
  kNormal = 0,
  kConfChange = 1,  // data is an encoded ConfChange (codec.h)
};

struct Entry {
  Term term;
  LogIndex index;
  EntryType type = EntryType::kNormal;
  std::string data;

  // Bytes this entry counts for in size limits (payload plus a fixed overhead).
  uint64_t ByteSize() const { return data.size() + 24; }
  bool operator==(const Entry&) const = default;
};

// What must survive a crash besides the log: current term, vote in it, commit index.
struct HardState {
  Term term;
  NodeId vote;
  LogIndex commit;

  bool empty() const { return term == Term{} && vote.none() && commit == LogIndex{}; }
  bool operator==(const HardState&) const = default;
};

// A membership configuration. Joint when voters_outgoing is non-empty.
struct ConfState {
  std::vector<NodeId> voters;
  std::vector<NodeId> learners;
  std::vector<NodeId> voters_outgoing;
  // Voters of the outgoing config that become learners when the joint config is left.
  std::vector<NodeId> learners_next;
  bool auto_leave = false;

  // Compares as sets (order of ids does not matter).
  bool Equivalent(const ConfState& o) const;
  bool operator==(const ConfState&) const = default;
};

struct SnapshotMetadata {
  ConfState conf_state;
  LogIndex index;
  Term term;
  bool operator==(const SnapshotMetadata&) const = default;
};

// A point-in-time image of the state machine plus the log position it covers.
struct Snapshot {
  SnapshotMetadata metadata;
  std::string data;  // opaque to the core: produced and consumed by the state machine

  bool empty() const { return metadata.index == LogIndex{}; }
  bool operator==(const Snapshot&) const = default;
};

enum class MessageType : uint8_t {
  kHup = 0,   // local: start an election
  kBeat = 1,  // local: leader sends heartbeats
  kProp = 2,  // proposal (local or forwarded to the leader)
  kApp = 3,   // append entries
  kAppResp = 4,
  kVote = 5,
  kVoteResp = 6,
  kSnap = 7,  // install snapshot
  kHeartbeat = 8,
  kHeartbeatResp = 9,
  kUnreachable = 10,     // local: transport could not reach a peer
  kSnapStatus = 11,      // local: outcome of sending a snapshot
  kCheckQuorum = 12,     // local: leader checks it still hears from a quorum
  kTransferLeader = 13,  // ask the leader to hand leadership to `from`
  kTimeoutNow = 14,      // leader tells the transferee to campaign at once
  kReadIndex = 15,
  kReadIndexResp = 16,
  kPreVote = 17,
  kPreVoteResp = 18,
};
inline constexpr int kNumMessageTypes = 19;
const char* MessageTypeName(MessageType t);

// Messages that never leave a node.
bool IsLocalMessage(MessageType t);
// Messages that answer another message.
bool IsResponseMessage(MessageType t);
// The response type that answers a vote request type.
MessageType VoteResponseType(MessageType t);

// One Raft message. Which fields are meaningful depends on type:
//   kApp:        index/log_term (entry before `entries`), entries, commit
//   kAppResp:    index (last matched, or the rejected probe), reject, reject_hint,
//                log_term (term at reject_hint, a hint for fast backtracking)
//   kVote/kPreVote: index/log_term of the candidate's last entry; context may be
//                "transfer" (kCampaignTransfer) to bypass leases
//   kSnap:       snapshot
//   kHeartbeat:  commit, context (ReadIndex batch), index (leader's tick, lease)
//   kHeartbeatResp: context and index echoed back
//   kReadIndex / kReadIndexResp: context identifies the read; index is the read index
struct Message {
  MessageType type = MessageType::kHup;
  NodeId to;
  NodeId from;
  Term term;
  Term log_term;
  LogIndex index;
  std::vector<Entry> entries;
  LogIndex commit;
  std::optional<Snapshot> snapshot;
  bool reject = false;
  LogIndex reject_hint;
  std::string context;

  bool operator==(const Message&) const = default;
};

inline constexpr const char* kCampaignTransfer = "transfer";

// A completed ReadIndex request: reads issued with `context` may be served once the
// state machine has applied `index`.
struct ReadState {
  LogIndex index;
  std::string context;
  bool operator==(const ReadState&) const = default;
};

enum class ConfChangeType : uint8_t { kAddNode = 0, kRemoveNode = 1, kAddLearnerNode = 2 };

struct ConfChangeSingle {
  ConfChangeType type = ConfChangeType::kAddNode;
  NodeId node_id;
  bool operator==(const ConfChangeSingle&) const = default;
};

enum class ConfChangeTransition : uint8_t {
  // One voter change applies directly; more enter a joint config that is left
  // automatically once applied.
  kAuto = 0,
  // Always enter a joint config, left automatically.
  kJointImplicit = 1,
  // Always enter a joint config; the application leaves it with an empty ConfChange.
  kJointExplicit = 2,
};

// A membership change. An empty `changes` list means "leave the joint config".
struct ConfChange {
  ConfChangeTransition transition = ConfChangeTransition::kAuto;
  std::vector<ConfChangeSingle> changes;
  std::string context;

  bool LeaveJoint() const { return changes.empty(); }
  // Whether applying this change enters a joint config, and if so whether it is left
  // automatically.
  bool EnterJoint(bool* auto_leave) const;
  bool operator==(const ConfChange&) const = default;
};

}  // namespace gojodb::consensus
