// Progress: the leader's view of one follower's log, and its replication state.
#pragma once

#include <map>
#include <string>

#include "core/consensus/inflights.h"
#include "core/consensus/types.h"

namespace gojodb::consensus {

enum class ProgressState : uint8_t {
  // Sends at most one MsgApp per heartbeat interval until the match point is found.
  kProbe,
  // Streams MsgApp optimistically (pipelining), bounded by the inflights window.
  kReplicate,
  // A snapshot is in flight; nothing else is sent until it is reported.
  kSnapshot,
};
const char* ProgressStateName(ProgressState s);

class Progress {
 public:
  Progress(LogIndex next, size_t max_inflight, uint64_t max_inflight_bytes, bool learner)
      : next(next), inflights(max_inflight, max_inflight_bytes), is_learner(learner) {}

  void BecomeProbe();
  void BecomeReplicate();
  void BecomeSnapshot(LogIndex snapshot_index);

  // Bookkeeping after sending a MsgApp with `entries` entries totalling `bytes`.
  void SentEntries(size_t entries, uint64_t bytes);
  // An ack for index n; returns false if it is stale. Updates match and next.
  bool MaybeUpdate(LogIndex n);
  // A rejection of the MsgApp probing at `rejected`; match_hint is where the follower
  // suggests to retry. Returns false if the rejection is stale.
  bool MaybeDecrTo(LogIndex rejected, LogIndex match_hint);
  // Whether sending more MsgApp is throttled.
  bool IsPaused() const;
  std::string DebugString() const;

  LogIndex match;
  LogIndex next;
  ProgressState state = ProgressState::kProbe;
  // In kSnapshot: the index of the snapshot being sent.
  LogIndex pending_snapshot;
  // Heard from recently (reset by CheckQuorum each election timeout).
  bool recent_active = false;
  // In kProbe: a MsgApp was sent this heartbeat interval; in kReplicate: the window
  // is full.
  bool msg_app_flow_paused = false;
  Inflights inflights;
  bool is_learner = false;
  // The leader's tick at which the newest heartbeat this follower acknowledged was
  // sent (lease reads).
  uint64_t lease_ack_tick = 0;
  bool lease_acked = false;
};

using ProgressMap = std::map<NodeId, Progress>;

}  // namespace gojodb::consensus
