#include "tests/sim/raft/checker.h"

#include <string>

namespace gojodb::sim {

namespace {
std::string Str(uint64_t v) { return std::to_string(v); }
}  // namespace

uint64_t Mix(uint64_t h, uint64_t v) {
  uint64_t z = h ^ (v + 0x9E3779B97F4A7C15ULL + (h << 6) + (h >> 2));
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

uint64_t HashBytes(const std::string& s) {
  uint64_t h = 1469598103934665603ULL;  // FNV-1a
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ULL;
  return h;
}

Status Checker::OnLeader(Term term, NodeId id) {
  ObserveTerm(term);
  auto [it, inserted] = leader_of_term_.emplace(term.value(), id);
  if (!inserted && it->second != id) {
    return Status::Internal("election safety: nodes " + Str(it->second.value()) + " and " +
                            Str(id.value()) + " are both leader of term " + Str(term.value()));
  }
  return Status::OK();
}

Status Checker::OnPersisted(NodeId id, LogIndex index, Term term, uint64_t prefix) {
  auto [it, inserted] = prefix_.emplace(std::make_pair(index.value(), term.value()), prefix);
  if (!inserted && it->second != prefix) {
    return Status::Internal("log matching: node " + Str(id.value()) + " holds entry index " +
                            Str(index.value()) + " term " + Str(term.value()) +
                            " with a log prefix differing from another node's");
  }
  return Status::OK();
}

Result<uint64_t> Checker::PrefixOf(LogIndex index, Term term) const {
  if (index == LogIndex{}) return uint64_t{0};
  auto it = prefix_.find({index.value(), term.value()});
  if (it == prefix_.end()) {
    return Status::Internal("snapshot at index " + Str(index.value()) + " term " +
                            Str(term.value()) + " covers an entry no node ever persisted");
  }
  return it->second;
}

Status Checker::OnApplied(NodeId id, LogIndex index, Term term, uint64_t state) {
  auto [it, inserted] = applied_.emplace(index.value(), Applied{term, state, max_term_});
  if (!inserted && (it->second.term != term || it->second.state != state)) {
    return Status::Internal("state machine safety: node " + Str(id.value()) +
                            " applied a different entry (term " + Str(term.value()) + " vs " +
                            Str(it->second.term.value()) + ") or history at index " +
                            Str(index.value()));
  }
  if (index > max_applied_) max_applied_ = index;
  return Status::OK();
}

Status Checker::OnSnapshotInstalled(NodeId id, LogIndex index, uint64_t state) {
  auto it = applied_.find(index.value());
  if (it == applied_.end()) {
    return Status::Internal("node " + Str(id.value()) + " installed a snapshot at " +
                            Str(index.value()) + " that no node applied");
  }
  if (it->second.state != state) {
    return Status::Internal("state machine safety: node " + Str(id.value()) +
                            " installed a snapshot at index " + Str(index.value()) +
                            " with a different state");
  }
  return Status::OK();
}

Status Checker::OnNewLeader(NodeId id, Term term, const consensus::RaftLog& log) {
  RETURN_IF_ERROR(OnLeader(term, id));
  LogIndex first = log.FirstIndex();
  for (auto it = applied_.lower_bound(first.value()); it != applied_.end(); ++it) {
    if (it->second.known_at >= term) continue;  // possibly committed after this term began
    auto t = log.TermAt(LogIndex(it->first));
    if (!t.ok() || *t != it->second.term) {
      return Status::Internal("leader completeness: node " + Str(id.value()) +
                              " became leader of term " + Str(term.value()) +
                              " without the entry committed at index " + Str(it->first) +
                              " (term " + Str(it->second.term.value()) + ")");
    }
  }
  return Status::OK();
}

Status Checker::OnReadState(NodeId id, const std::string& ctx, LogIndex index) {
  auto it = reads_.find(ctx);
  if (it == reads_.end()) return Status::OK();
  ++reads_checked_;
  if (index < it->second) {
    return Status::Internal("linearizable read: read " + ctx + " at node " + Str(id.value()) +
                            " got read index " + Str(index.value()) + " but index " +
                            Str(it->second.value()) + " was applied before it was issued");
  }
  return Status::OK();
}

}  // namespace gojodb::sim
