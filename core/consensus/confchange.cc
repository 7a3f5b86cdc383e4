#include "core/consensus/confchange.h"

#include <algorithm>

namespace gojodb::consensus {

namespace {

size_t SymmetricDiff(const std::set<NodeId>& a, const std::set<NodeId>& b) {
  size_t n = 0;
  for (NodeId id : a) n += b.count(id) ? 0 : 1;
  for (NodeId id : b) n += a.count(id) ? 0 : 1;
  return n;
}

}  // namespace

Status CheckInvariants(const TrackerConfig& cfg, const ProgressMap& prs) {
  for (NodeId id : cfg.voters.Ids()) {
    if (!prs.count(id))
      return Status::Internal("consensus: no progress for voter " + std::to_string(id.value()));
  }
  for (NodeId id : cfg.learners) {
    auto it = prs.find(id);
    if (it == prs.end()) return Status::Internal("consensus: no progress for learner");
    if (cfg.voters.outgoing.contains(id) || cfg.voters.incoming.contains(id)) {
      return Status::Internal("consensus: node is both learner and voter");
    }
    if (!it->second.is_learner)
      return Status::Internal("consensus: learner progress not marked learner");
  }
  for (NodeId id : cfg.learners_next) {
    if (!prs.count(id)) return Status::Internal("consensus: no progress for learner_next");
    if (!cfg.voters.outgoing.contains(id))
      return Status::Internal("consensus: learner_next is not an outgoing voter");
    if (prs.at(id).is_learner)
      return Status::Internal("consensus: learner_next already marked learner");
  }
  for (NodeId id : cfg.voters.Ids()) {
    if (prs.at(id).is_learner) return Status::Internal("consensus: voter progress marked learner");
  }
  for (const auto& [id, pr] : prs) {
    if (!cfg.voters.contains(id) && !cfg.learners.count(id)) {
      return Status::Internal("consensus: progress for a node outside the config");
    }
  }
  if (!cfg.voters.joint()) {
    if (!cfg.learners_next.empty())
      return Status::Internal("consensus: learners_next outside a joint config");
    if (cfg.auto_leave) return Status::Internal("consensus: auto_leave outside a joint config");
  }
  return Status::OK();
}

Result<ConfigAndProgress> Changer::EnterJoint(bool auto_leave,
                                              const std::vector<ConfChangeSingle>& ccs) const {
  TrackerConfig cfg = tracker_.config;
  ProgressMap prs = tracker_.progress;
  if (cfg.voters.joint()) return Status::FailedPrecondition("consensus: config is already joint");
  if (cfg.voters.incoming.empty()) {
    return Status::FailedPrecondition("consensus: can't make a zero-voter config joint");
  }
  cfg.voters.outgoing = cfg.voters.incoming;
  RETURN_IF_ERROR(Apply(&cfg, &prs, ccs));
  cfg.auto_leave = auto_leave;
  RETURN_IF_ERROR(CheckInvariants(cfg, prs));
  return ConfigAndProgress{std::move(cfg), std::move(prs)};
}

Result<ConfigAndProgress> Changer::LeaveJoint() const {
  TrackerConfig cfg = tracker_.config;
  ProgressMap prs = tracker_.progress;
  if (!cfg.voters.joint())
    return Status::FailedPrecondition("consensus: can't leave a non-joint config");
  for (NodeId id : cfg.learners_next) {
    cfg.learners.insert(id);
    prs.at(id).is_learner = true;
  }
  cfg.learners_next.clear();
  for (NodeId id : cfg.voters.outgoing.ids()) {
    if (!cfg.voters.incoming.contains(id) && !cfg.learners.count(id)) prs.erase(id);
  }
  cfg.voters.outgoing = MajorityConfig();
  cfg.auto_leave = false;
  RETURN_IF_ERROR(CheckInvariants(cfg, prs));
  return ConfigAndProgress{std::move(cfg), std::move(prs)};
}

Result<ConfigAndProgress> Changer::Simple(const std::vector<ConfChangeSingle>& ccs) const {
  TrackerConfig cfg = tracker_.config;
  ProgressMap prs = tracker_.progress;
  if (cfg.voters.joint()) {
    return Status::FailedPrecondition(
        "consensus: can't apply a simple config change in a joint config");
  }
  RETURN_IF_ERROR(Apply(&cfg, &prs, ccs));
  if (SymmetricDiff(tracker_.config.voters.incoming.ids(), cfg.voters.incoming.ids()) > 1) {
    return Status::InvalidArgument(
        "consensus: more than one voter changed without entering a joint config");
  }
  RETURN_IF_ERROR(CheckInvariants(cfg, prs));
  return ConfigAndProgress{std::move(cfg), std::move(prs)};
}

Status Changer::Apply(TrackerConfig* cfg, ProgressMap* prs,
                      const std::vector<ConfChangeSingle>& ccs) const {
  for (const ConfChangeSingle& cc : ccs) {
    if (cc.node_id.none()) continue;  // etcd-compatible: a zero id is a no-op
    switch (cc.type) {
      case ConfChangeType::kAddNode:
        MakeVoter(cfg, prs, cc.node_id);
        break;
      case ConfChangeType::kAddLearnerNode:
        MakeLearner(cfg, prs, cc.node_id);
        break;
      case ConfChangeType::kRemoveNode:
        Remove(cfg, prs, cc.node_id);
        break;
      default:
        return Status::InvalidArgument("consensus: unknown conf change type");
    }
  }
  if (cfg->voters.incoming.empty()) return Status::InvalidArgument("consensus: removed all voters");
  return Status::OK();
}

void Changer::MakeVoter(TrackerConfig* cfg, ProgressMap* prs, NodeId id) const {
  auto it = prs->find(id);
  if (it == prs->end()) {
    InitProgress(cfg, prs, id, /*learner=*/false);
    return;
  }
  it->second.is_learner = false;
  cfg->learners.erase(id);
  cfg->learners_next.erase(id);
  cfg->voters.incoming.mutable_ids().insert(id);
}

void Changer::MakeLearner(TrackerConfig* cfg, ProgressMap* prs, NodeId id) const {
  auto it = prs->find(id);
  if (it == prs->end()) {
    InitProgress(cfg, prs, id, /*learner=*/true);
    return;
  }
  if (it->second.is_learner) return;
  Progress saved = it->second;
  // Drop it as a voter but keep its progress: it stays replicated to.
  Remove(cfg, prs, id);
  prs->insert_or_assign(id, saved);
  if (cfg->voters.outgoing.contains(id)) {
    // Still votes in the outgoing config: becomes a learner when that is left.
    cfg->learners_next.insert(id);
  } else {
    prs->at(id).is_learner = true;
    cfg->learners.insert(id);
  }
}

void Changer::Remove(TrackerConfig* cfg, ProgressMap* prs, NodeId id) const {
  if (!prs->count(id)) return;
  cfg->voters.incoming.mutable_ids().erase(id);
  cfg->learners.erase(id);
  cfg->learners_next.erase(id);
  // An outgoing voter keeps its progress until the joint config is left.
  if (!cfg->voters.outgoing.contains(id)) prs->erase(id);
}

void Changer::InitProgress(TrackerConfig* cfg, ProgressMap* prs, NodeId id, bool learner) const {
  if (learner) {
    cfg->learners.insert(id);
  } else {
    cfg->voters.incoming.mutable_ids().insert(id);
  }
  // Start probing at the leader's last index; the first probe finds the match point.
  Progress pr(std::max(last_index_, LogIndex{1}), tracker_.max_inflight(),
              tracker_.max_inflight_bytes(), learner);
  // Give the new member a grace period before CheckQuorum counts it as inactive.
  pr.recent_active = true;
  prs->insert_or_assign(id, std::move(pr));
}

Result<ConfigAndProgress> RestoreConfig(const ConfState& cs, LogIndex last_index,
                                        size_t max_inflight, uint64_t max_inflight_bytes) {
  TrackerConfig cfg;
  ProgressMap prs;
  auto add = [&](NodeId id, bool learner) {
    if (prs.count(id)) return;
    Progress pr(last_index + 1, max_inflight, max_inflight_bytes, learner);
    pr.recent_active = true;
    prs.insert_or_assign(id, std::move(pr));
  };
  for (NodeId id : cs.voters) {
    cfg.voters.incoming.mutable_ids().insert(id);
    add(id, false);
  }
  for (NodeId id : cs.voters_outgoing) {
    cfg.voters.outgoing.mutable_ids().insert(id);
    add(id, false);
  }
  for (NodeId id : cs.learners) {
    cfg.learners.insert(id);
    add(id, true);
  }
  for (NodeId id : cs.learners_next) cfg.learners_next.insert(id);
  cfg.auto_leave = cs.auto_leave;
  if (!cs.voters_outgoing.empty() && cs.voters.empty()) {
    return Status::InvalidArgument("consensus: joint config with an empty incoming half");
  }
  RETURN_IF_ERROR(CheckInvariants(cfg, prs));
  return ConfigAndProgress{std::move(cfg), std::move(prs)};
}

}  // namespace gojodb::consensus
