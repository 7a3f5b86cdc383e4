// Safety invariants of a simulated Raft group, checked as the simulation runs:
//   election safety     at most one leader per term
//   log matching        two logs holding an entry of the same index and term are
//                       identical up to it (checked with prefix hashes)
//   leader completeness an entry committed in a term is in the log of every leader
//                       of a later term
//   state machine safety no two nodes apply different entries at one index
//   read linearizability a ReadIndex answer covers every entry applied anywhere
//                       before the read was issued
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "core/consensus/raft_log.h"
#include "internal/status.h"

namespace gojodb::sim {

using consensus::LogIndex;
using consensus::NodeId;
using consensus::Term;

uint64_t Mix(uint64_t h, uint64_t v);
uint64_t HashBytes(const std::string& s);

class Checker {
 public:
  Status OnLeader(Term term, NodeId id);
  // A node persisted the entry at (index, term) whose log prefix hashes to `prefix`.
  Status OnPersisted(NodeId id, LogIndex index, Term term, uint64_t prefix);
  // The prefix hash recorded for (index, term); 0 for index 0.
  Result<uint64_t> PrefixOf(LogIndex index, Term term) const;
  // A node applied the entry at index; state is the state machine hash after it.
  Status OnApplied(NodeId id, LogIndex index, Term term, uint64_t state);
  // A node installed a snapshot whose state machine hash is `state`.
  Status OnSnapshotInstalled(NodeId id, LogIndex index, uint64_t state);
  // A node became leader of `term` with this log.
  Status OnNewLeader(NodeId id, Term term, const consensus::RaftLog& log);
  void OnReadIssued(const std::string& ctx) { reads_[ctx] = max_applied_; }
  Status OnReadState(NodeId id, const std::string& ctx, LogIndex index);
  void ObserveTerm(Term t) {
    if (t > max_term_) max_term_ = t;
  }

  LogIndex max_applied() const { return max_applied_; }
  uint64_t leaders() const { return leader_of_term_.size(); }
  uint64_t reads_checked() const { return reads_checked_; }

 private:
  struct Applied {
    Term term;
    uint64_t state;
    Term known_at;  // largest term in the group when first applied (>= commit term)
  };
  std::map<uint64_t, NodeId> leader_of_term_;
  std::map<std::pair<uint64_t, uint64_t>, uint64_t> prefix_;  // (index, term) -> hash
  std::map<uint64_t, Applied> applied_;
  std::map<std::string, LogIndex> reads_;
  LogIndex max_applied_;
  Term max_term_;
  uint64_t reads_checked_ = 0;
};

}  // namespace gojodb::sim
