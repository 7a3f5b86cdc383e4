#include "core/consensus/progress.h"

#include <algorithm>
#include <sstream>

namespace gojodb::consensus {

const char* ProgressStateName(ProgressState s) {
  switch (s) {
    case ProgressState::kProbe:
      return "StateProbe";
    case ProgressState::kReplicate:
      return "StateReplicate";
    case ProgressState::kSnapshot:
      return "StateSnapshot";
  }
  return "?";
}

namespace {
void ResetState(Progress* p, ProgressState s) {
  p->msg_app_flow_paused = false;
  p->pending_snapshot = LogIndex{};
  p->state = s;
  p->inflights.Reset();
}
}  // namespace

void Progress::BecomeProbe() {
  // Coming back from a snapshot, resume after it; otherwise probe right after match.
  if (state == ProgressState::kSnapshot) {
    LogIndex pending = pending_snapshot;
    ResetState(this, ProgressState::kProbe);
    next = std::max(match + 1, pending + 1);
  } else {
    ResetState(this, ProgressState::kProbe);
    next = match + 1;
  }
}

void Progress::BecomeReplicate() {
  ResetState(this, ProgressState::kReplicate);
  next = match + 1;
}

void Progress::BecomeSnapshot(LogIndex snapshot_index) {
  ResetState(this, ProgressState::kSnapshot);
  pending_snapshot = snapshot_index;
}

void Progress::SentEntries(size_t entries, uint64_t bytes) {
  switch (state) {
    case ProgressState::kReplicate:
      if (entries > 0) {
        next = next + entries;
        inflights.Add(next - 1, bytes);
      }
      msg_app_flow_paused = inflights.Full();
      break;
    case ProgressState::kProbe:
      // Probe with one message per heartbeat interval; an empty probe (the follower is
      // up to date) does not pause.
      if (entries > 0) msg_app_flow_paused = true;
      break;
    case ProgressState::kSnapshot:
      break;
  }
}

bool Progress::MaybeUpdate(LogIndex n) {
  bool updated = false;
  if (match < n) {
    match = n;
    updated = true;
    msg_app_flow_paused = false;
  }
  next = std::max(next, n + 1);
  return updated;
}

bool Progress::MaybeDecrTo(LogIndex rejected, LogIndex match_hint) {
  if (state == ProgressState::kReplicate) {
    // Rejections below the match point are stale (reordered or duplicated).
    if (rejected <= match) return false;
    // Resume right after what we know matches.
    next = match + 1;
    return true;
  }
  // In probe, only the rejection of the message we last sent (next-1) counts.
  if (next - 1 != rejected) return false;
  next = std::max(std::min(rejected, match_hint + 1), match + 1);
  msg_app_flow_paused = false;
  return true;
}

bool Progress::IsPaused() const {
  switch (state) {
    case ProgressState::kProbe:
    case ProgressState::kReplicate:
      return msg_app_flow_paused;
    case ProgressState::kSnapshot:
      return true;
  }
  return true;
}

std::string Progress::DebugString() const {
  std::ostringstream os;
  os << ProgressStateName(state) << " match=" << match << " next=" << next;
  if (is_learner) os << " learner";
  if (IsPaused()) os << " paused";
  if (pending_snapshot != LogIndex{}) os << " pendingSnap=" << pending_snapshot;
  if (!recent_active) os << " inactive";
  if (inflights.Count() > 0) os << " inflight=" << inflights.Count();
  return os.str();
}

}  // namespace gojodb::consensus
