#include "core/consensus/messages.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "core/consensus/check.h"

namespace gojodb::consensus {

namespace internal {
void CheckFailed(const char* file, int line, const char* cond, const char* msg) {
  std::fprintf(stderr, "consensus: invariant violated at %s:%d: %s (%s)\n", file, line, msg, cond);
  std::abort();
}
}  // namespace internal

const char* StateTypeName(StateType s) {
  switch (s) {
    case StateType::kFollower:
      return "Follower";
    case StateType::kCandidate:
      return "Candidate";
    case StateType::kLeader:
      return "Leader";
    case StateType::kPreCandidate:
      return "PreCandidate";
  }
  return "?";
}

const char* MessageTypeName(MessageType t) {
  static const char* kNames[kNumMessageTypes] = {
      "MsgHup",           "MsgBeat",           "MsgProp",        "MsgApp",
      "MsgAppResp",       "MsgVote",           "MsgVoteResp",    "MsgSnap",
      "MsgHeartbeat",     "MsgHeartbeatResp",  "MsgUnreachable", "MsgSnapStatus",
      "MsgCheckQuorum",   "MsgTransferLeader", "MsgTimeoutNow",  "MsgReadIndex",
      "MsgReadIndexResp", "MsgPreVote",        "MsgPreVoteResp"};
  auto i = static_cast<int>(t);
  return i < kNumMessageTypes ? kNames[i] : "MsgUnknown";
}

bool IsLocalMessage(MessageType t) {
  return t == MessageType::kHup || t == MessageType::kBeat || t == MessageType::kUnreachable ||
         t == MessageType::kSnapStatus || t == MessageType::kCheckQuorum;
}

bool IsResponseMessage(MessageType t) {
  return t == MessageType::kAppResp || t == MessageType::kVoteResp ||
         t == MessageType::kHeartbeatResp || t == MessageType::kUnreachable ||
         t == MessageType::kPreVoteResp;
}

MessageType VoteResponseType(MessageType t) {
  switch (t) {
    case MessageType::kVote:
      return MessageType::kVoteResp;
    case MessageType::kPreVote:
      return MessageType::kPreVoteResp;
    default:
      RAFT_CHECK(false, "not a vote message");
  }
}

namespace {
bool SameSet(std::vector<NodeId> a, std::vector<NodeId> b) {
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  return a == b;
}
}  // namespace

bool ConfState::Equivalent(const ConfState& o) const {
  return SameSet(voters, o.voters) && SameSet(learners, o.learners) &&
         SameSet(voters_outgoing, o.voters_outgoing) && SameSet(learners_next, o.learners_next) &&
         auto_leave == o.auto_leave;
}

bool ConfChange::EnterJoint(bool* auto_leave) const {
  // Only a change of more than one voter, or an explicit request, needs a joint config.
  if (transition != ConfChangeTransition::kAuto || changes.size() > 1) {
    *auto_leave = transition != ConfChangeTransition::kJointExplicit;
    return true;
  }
  *auto_leave = false;
  return false;
}

}  // namespace gojodb::consensus
