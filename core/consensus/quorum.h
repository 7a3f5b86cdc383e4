// Quorum arithmetic: majority and joint (two-majority) configurations.
#pragma once

#include <array>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "core/consensus/types.h"

namespace gojodb::consensus {

enum class VoteResult : uint8_t { kPending, kLost, kWon };

// Looks up the acknowledged log index of a voter (nullopt if unknown).
using AckedIndexFn = std::function<std::optional<LogIndex>(NodeId)>;

// A set of voters deciding by simple majority.
class MajorityConfig {
 public:
  MajorityConfig() = default;
  explicit MajorityConfig(std::set<NodeId> ids) : ids_(std::move(ids)) {}

  // The largest index acknowledged by a majority. An empty config returns
  // LogIndex::Max() so that it never restricts a joint config.
  LogIndex CommittedIndex(const AckedIndexFn& acked) const;
  // Outcome of an election given the votes cast so far (missing ids: not yet voted).
  // An empty config wins.
  VoteResult Vote(const std::map<NodeId, bool>& votes) const;

  const std::set<NodeId>& ids() const { return ids_; }
  std::set<NodeId>& mutable_ids() { return ids_; }
  bool contains(NodeId id) const { return ids_.count(id) > 0; }
  size_t size() const { return ids_.size(); }
  bool empty() const { return ids_.empty(); }
  std::string DebugString() const;
  bool operator==(const MajorityConfig&) const = default;

 private:
  std::set<NodeId> ids_;
};

// Two majority configs that must both agree: [0] incoming, [1] outgoing (empty unless
// joint).
class JointConfig {
 public:
  LogIndex CommittedIndex(const AckedIndexFn& acked) const;
  VoteResult Vote(const std::map<NodeId, bool>& votes) const;
  // Union of both configs' voters.
  std::set<NodeId> Ids() const;
  bool contains(NodeId id) const { return incoming.contains(id) || outgoing.contains(id); }
  bool joint() const { return !outgoing.empty(); }
  std::string DebugString() const;
  bool operator==(const JointConfig&) const = default;

  MajorityConfig incoming;
  MajorityConfig outgoing;
};

}  // namespace gojodb::consensus
