#include "core/consensus/tracker.h"

#include <sstream>

namespace gojodb::consensus {

namespace {
std::vector<NodeId> ToVec(const std::set<NodeId>& s) {
  return std::vector<NodeId>(s.begin(), s.end());
}
}  // namespace

std::string TrackerConfig::DebugString() const {
  std::ostringstream os;
  os << "voters=" << voters.DebugString();
  if (!learners.empty()) os << " learners=" << MajorityConfig(learners).DebugString();
  if (!learners_next.empty())
    os << " learners_next=" << MajorityConfig(learners_next).DebugString();
  if (auto_leave) os << " autoleave";
  return os.str();
}

ConfState ProgressTracker::GetConfState() const {
  ConfState cs;
  cs.voters = ToVec(config.voters.incoming.ids());
  cs.voters_outgoing = ToVec(config.voters.outgoing.ids());
  cs.learners = ToVec(config.learners);
  cs.learners_next = ToVec(config.learners_next);
  cs.auto_leave = config.auto_leave;
  return cs;
}

bool ProgressTracker::IsSingleton() const {
  return config.voters.incoming.size() == 1 && !config.voters.joint();
}

LogIndex ProgressTracker::Committed() const {
  return config.voters.CommittedIndex([this](NodeId id) -> std::optional<LogIndex> {
    auto it = progress.find(id);
    if (it == progress.end()) return std::nullopt;
    return it->second.match;
  });
}

bool ProgressTracker::QuorumActive() const {
  std::map<NodeId, bool> votes;
  for (const auto& [id, pr] : progress) {
    if (pr.is_learner) continue;
    votes[id] = pr.recent_active;
  }
  return config.voters.Vote(votes) == VoteResult::kWon;
}

std::vector<NodeId> ProgressTracker::VoterNodes() const { return ToVec(config.voters.Ids()); }

std::vector<NodeId> ProgressTracker::LearnerNodes() const { return ToVec(config.learners); }

void ProgressTracker::RecordVote(NodeId id, bool granted) { votes_.emplace(id, granted); }

VoteResult ProgressTracker::TallyVotes(size_t* granted, size_t* rejected) const {
  *granted = 0;
  *rejected = 0;
  for (const auto& [id, pr] : progress) {
    if (pr.is_learner) continue;
    auto it = votes_.find(id);
    if (it == votes_.end()) continue;
    if (it->second) {
      ++*granted;
    } else {
      ++*rejected;
    }
  }
  return config.voters.Vote(votes_);
}

Progress* ProgressTracker::Get(NodeId id) {
  auto it = progress.find(id);
  return it == progress.end() ? nullptr : &it->second;
}

const Progress* ProgressTracker::Get(NodeId id) const {
  auto it = progress.find(id);
  return it == progress.end() ? nullptr : &it->second;
}

}  // namespace gojodb::consensus
