#include "core/consensus/quorum.h"

#include <algorithm>
#include <sstream>
#include <vector>

namespace gojodb::consensus {

LogIndex MajorityConfig::CommittedIndex(const AckedIndexFn& acked) const {
  if (ids_.empty()) return LogIndex::Max();
  std::vector<LogIndex> srt;
  srt.reserve(ids_.size());
  for (NodeId id : ids_) srt.push_back(acked(id).value_or(LogIndex{}));
  std::sort(srt.begin(), srt.end());
  // With n voters and quorum q = n/2+1, the q-th largest value is acked by a quorum.
  size_t n = srt.size();
  return srt[n - (n / 2 + 1)];
}

VoteResult MajorityConfig::Vote(const std::map<NodeId, bool>& votes) const {
  if (ids_.empty()) return VoteResult::kWon;
  size_t yes = 0, missing = 0;
  for (NodeId id : ids_) {
    auto it = votes.find(id);
    if (it == votes.end()) {
      ++missing;
    } else if (it->second) {
      ++yes;
    }
  }
  size_t q = ids_.size() / 2 + 1;
  if (yes >= q) return VoteResult::kWon;
  if (yes + missing >= q) return VoteResult::kPending;
  return VoteResult::kLost;
}

std::string MajorityConfig::DebugString() const {
  std::ostringstream os;
  os << "(";
  bool first = true;
  for (NodeId id : ids_) {
    if (!first) os << " ";
    os << id;
    first = false;
  }
  os << ")";
  return os.str();
}

LogIndex JointConfig::CommittedIndex(const AckedIndexFn& acked) const {
  return std::min(incoming.CommittedIndex(acked), outgoing.CommittedIndex(acked));
}

VoteResult JointConfig::Vote(const std::map<NodeId, bool>& votes) const {
  VoteResult r0 = incoming.Vote(votes);
  VoteResult r1 = outgoing.Vote(votes);
  if (r0 == r1) return r0;
  if (r0 == VoteResult::kLost || r1 == VoteResult::kLost) return VoteResult::kLost;
  return VoteResult::kPending;  // one won, the other is pending
}

std::set<NodeId> JointConfig::Ids() const {
  std::set<NodeId> all = incoming.ids();
  all.insert(outgoing.ids().begin(), outgoing.ids().end());
  return all;
}

std::string JointConfig::DebugString() const {
  std::string s = incoming.DebugString();
  if (joint()) s += "&&" + outgoing.DebugString();
  return s;
}

}  // namespace gojodb::consensus
