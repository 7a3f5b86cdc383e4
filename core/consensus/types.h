// Strong-typed identifiers of the Raft core: NodeId, Term, LogIndex.
//
// Each is a 64-bit value that does not convert implicitly to another, so a term can
// never be passed where an index is expected. LogIndex and Term support the little
// arithmetic the protocol needs; NodeId supports none. Zero is "none" for all three.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <limits>
#include <ostream>

namespace gojodb::consensus {

// A member of a Raft group. NodeId{0} (kNoNode) means "no node".
class NodeId {
 public:
  constexpr NodeId() = default;
  constexpr explicit NodeId(uint64_t v) : v_(v) {}
  constexpr uint64_t value() const { return v_; }
  constexpr bool none() const { return v_ == 0; }
  auto operator<=>(const NodeId&) const = default;

 private:
  uint64_t v_ = 0;
};
inline constexpr NodeId kNoNode{};

// A Raft term. Terms only grow.
class Term {
 public:
  constexpr Term() = default;
  constexpr explicit Term(uint64_t v) : v_(v) {}
  constexpr uint64_t value() const { return v_; }
  auto operator<=>(const Term&) const = default;
  constexpr Term operator+(uint64_t d) const { return Term(v_ + d); }

 private:
  uint64_t v_ = 0;
};

// A position in the replicated log; the first real entry has index 1.
class LogIndex {
 public:
  constexpr LogIndex() = default;
  constexpr explicit LogIndex(uint64_t v) : v_(v) {}
  constexpr uint64_t value() const { return v_; }
  auto operator<=>(const LogIndex&) const = default;
  constexpr LogIndex operator+(uint64_t d) const { return LogIndex(v_ + d); }
  // REQUIRES: d <= value().
  constexpr LogIndex operator-(uint64_t d) const { return LogIndex(v_ - d); }
  // Number of indexes from b to this; REQUIRES: b <= *this.
  constexpr uint64_t operator-(LogIndex b) const { return v_ - b.v_; }
  LogIndex& operator++() {
    ++v_;
    return *this;
  }
  LogIndex& operator--() {
    --v_;
    return *this;
  }
  static constexpr LogIndex Max() { return LogIndex(std::numeric_limits<uint64_t>::max()); }

 private:
  uint64_t v_ = 0;
};

inline std::ostream& operator<<(std::ostream& os, NodeId v) { return os << v.value(); }
inline std::ostream& operator<<(std::ostream& os, Term v) { return os << v.value(); }
inline std::ostream& operator<<(std::ostream& os, LogIndex v) { return os << v.value(); }

// The role a node plays in its group.
enum class StateType : uint8_t { kFollower, kCandidate, kLeader, kPreCandidate };
const char* StateTypeName(StateType s);

}  // namespace gojodb::consensus

template <>
struct std::hash<gojodb::consensus::NodeId> {
  size_t operator()(gojodb::consensus::NodeId v) const noexcept {
    return std::hash<uint64_t>()(v.value());
  }
};
