// ProgressTracker: the active membership config, every member's Progress, and the
// votes of the current election.
#pragma once

#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/consensus/messages.h"
#include "core/consensus/progress.h"
#include "core/consensus/quorum.h"

namespace gojodb::consensus {

// A membership configuration as tracked by the leader.
struct TrackerConfig {
  JointConfig voters;
  // Learners never vote and never count towards a quorum. Disjoint from both voter
  // sets.
  std::set<NodeId> learners;
  // Outgoing voters that become learners on leaving the joint config (they cannot be
  // learners while still voting in the outgoing half).
  std::set<NodeId> learners_next;
  // Leave the joint config automatically once it is applied.
  bool auto_leave = false;

  std::string DebugString() const;
  bool operator==(const TrackerConfig&) const = default;
};

class ProgressTracker {
 public:
  ProgressTracker(size_t max_inflight, uint64_t max_inflight_bytes)
      : max_inflight_(max_inflight), max_inflight_bytes_(max_inflight_bytes) {}

  ConfState GetConfState() const;
  // Whether the config has exactly one voter.
  bool IsSingleton() const;
  // The largest index replicated to a quorum (by Progress.match).
  LogIndex Committed() const;
  // Whether a quorum of voters was recently active (the leader counts itself).
  bool QuorumActive() const;
  std::vector<NodeId> VoterNodes() const;
  std::vector<NodeId> LearnerNodes() const;

  void ResetVotes() { votes_.clear(); }
  // Records a vote; the first vote of a node counts, later ones are ignored.
  void RecordVote(NodeId id, bool granted);
  // Outcome and counts of the election so far.
  VoteResult TallyVotes(size_t* granted, size_t* rejected) const;

  Progress* Get(NodeId id);
  const Progress* Get(NodeId id) const;

  TrackerConfig config;
  ProgressMap progress;
  size_t max_inflight() const { return max_inflight_; }
  uint64_t max_inflight_bytes() const { return max_inflight_bytes_; }

 private:
  size_t max_inflight_;
  uint64_t max_inflight_bytes_;
  std::map<NodeId, bool> votes_;
};

}  // namespace gojodb::consensus
