// Membership changes: computing the next TrackerConfig and ProgressMap from the
// current ones and a ConfChange (simple, enter joint, leave joint), and restoring
// them from a ConfState.
#pragma once

#include <utility>

#include "core/consensus/messages.h"
#include "core/consensus/tracker.h"
#include "internal/status.h"

namespace gojodb::consensus {

using ConfigAndProgress = std::pair<TrackerConfig, ProgressMap>;

// Works on copies: the tracker is untouched until the caller installs the result.
class Changer {
 public:
  // last_index: the leader's last log index, where new members start probing.
  Changer(const ProgressTracker& tracker, LogIndex last_index)
      : tracker_(tracker), last_index_(last_index) {}

  // Enters the joint config (incoming changed by ccs, outgoing = current voters).
  Result<ConfigAndProgress> EnterJoint(bool auto_leave,
                                       const std::vector<ConfChangeSingle>& ccs) const;
  // Leaves the joint config: drops the outgoing voters, turns learners_next into
  // learners.
  Result<ConfigAndProgress> LeaveJoint() const;
  // Applies changes that alter at most one voter, without a joint config.
  Result<ConfigAndProgress> Simple(const std::vector<ConfChangeSingle>& ccs) const;

 private:
  Status Apply(TrackerConfig* cfg, ProgressMap* prs,
               const std::vector<ConfChangeSingle>& ccs) const;
  void MakeVoter(TrackerConfig* cfg, ProgressMap* prs, NodeId id) const;
  void MakeLearner(TrackerConfig* cfg, ProgressMap* prs, NodeId id) const;
  void Remove(TrackerConfig* cfg, ProgressMap* prs, NodeId id) const;
  void InitProgress(TrackerConfig* cfg, ProgressMap* prs, NodeId id, bool learner) const;

  const ProgressTracker& tracker_;
  LogIndex last_index_;
};

// Checks the invariants tying a config to its progress map.
Status CheckInvariants(const TrackerConfig& cfg, const ProgressMap& prs);

// Builds the config and progress for a ConfState read from storage or a snapshot.
Result<ConfigAndProgress> RestoreConfig(const ConfState& cs, LogIndex last_index,
                                        size_t max_inflight, uint64_t max_inflight_bytes);

}  // namespace gojodb::consensus
