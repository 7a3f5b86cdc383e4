#include "core/controller/state_machine.h"

#include "core/mvcc/key_codec.h"

namespace gojodb::controller {

namespace {
constexpr auto kMeta = storage::ColumnFamily::kMeta;
constexpr std::string_view kRecordPrefix = "ctl/";
constexpr std::string_view kAppliedKey = "ctl-applied";

std::string RecordKey(const std::string& key) { return std::string(kRecordPrefix) + key; }
}  // namespace

Result<std::unique_ptr<ControllerStateMachine>> ControllerStateMachine::Open(
    storage::Engine* engine) {
  std::unique_ptr<ControllerStateMachine> sm(new ControllerStateMachine(engine));
  ASSIGN_OR_RETURN(auto applied, engine->Get({}, kMeta, kAppliedKey));
  if (!applied) {
    // A new cluster: write the initial records once, so that loading never has to
    // guess which of them a later command deleted.
    sm->state_ = ClusterState::Initial();
    RETURN_IF_ERROR(sm->Persist(consensus::LogIndex(), RecordKeys(sm->state_), sm->state_));
    return sm;
  }
  if (applied->size() != 8) return Status::Corruption("controller applied index is malformed");
  sm->applied_ = consensus::LogIndex(mvcc::ReadUint64(*applied));
  storage::ReadOptions ro;
  ro.lower_bound = std::string(kRecordPrefix);
  ro.upper_bound = mvcc::PrefixSuccessor(std::string(kRecordPrefix));
  auto it = engine->NewIterator(ro, kMeta);
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    std::string key(it->key().substr(kRecordPrefix.size()));
    RETURN_IF_ERROR(LoadRecord(&sm->state_, key, it->value()));
  }
  RETURN_IF_ERROR(it->status());
  return sm;
}

Status ControllerStateMachine::Persist(consensus::LogIndex index,
                                       const std::vector<std::string>& keys,
                                       const ClusterState& st) {
  storage::WriteBatch b;
  for (const auto& key : keys) {
    auto value = RecordValue(st, key);
    if (value) {
      b.Put(kMeta, RecordKey(key), *value);
    } else {
      b.Delete(kMeta, RecordKey(key));
    }
  }
  std::string applied;
  mvcc::AppendUint64(&applied, index.value());
  b.Put(kMeta, kAppliedKey, applied);
  // Not synced: the Raft log is, and the engine's WAL keeps writes in order, so a crash
  // loses only a tail that the log replays.
  return engine_->Write({}, b);
}

Status ControllerStateMachine::Apply(consensus::LogIndex index, std::string_view data) {
  std::string ignored;
  return ApplyCommand(index, data, &ignored);
}

Status ControllerStateMachine::ApplyCommand(consensus::LogIndex index, std::string_view data,
                                            std::string* result) {
  std::unique_lock lock(mu_);
  ClusterState next = state_;
  std::vector<std::string> touched;
  std::string answer;
  Status outcome = controller::Apply(&next, data, &answer, &touched);
  *result = EncodeOutcome(outcome, answer);
  RETURN_IF_ERROR(Persist(index, touched, next));
  const bool changed = !touched.empty();
  state_ = std::move(next);
  applied_ = index;
  lock.unlock();
  if (changed) changed_.notify_all();
  return Status::OK();
}

consensus::LogIndex ControllerStateMachine::Applied() const {
  std::lock_guard lock(mu_);
  return applied_;
}

Result<std::string> ControllerStateMachine::Snapshot() {
  std::lock_guard lock(mu_);
  return EncodeState(state_);
}

Status ControllerStateMachine::Restore(consensus::LogIndex index, std::string_view data) {
  ASSIGN_OR_RETURN(ClusterState st, DecodeState(data));
  storage::WriteBatch b;
  b.DeleteRange(kMeta, std::string(kRecordPrefix),
                mvcc::PrefixSuccessor(std::string(kRecordPrefix)));
  for (const auto& key : RecordKeys(st)) b.Put(kMeta, RecordKey(key), *RecordValue(st, key));
  std::string applied;
  mvcc::AppendUint64(&applied, index.value());
  b.Put(kMeta, kAppliedKey, applied);
  RETURN_IF_ERROR(engine_->Write({.sync = true}, b));
  {
    std::lock_guard lock(mu_);
    state_ = std::move(st);
    applied_ = index;
  }
  changed_.notify_all();
  return Status::OK();
}

ClusterState ControllerStateMachine::State() const {
  std::lock_guard lock(mu_);
  return state_;
}

ClusterState ControllerStateMachine::WaitForChange(uint64_t known, bool catalog,
                                                   std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mu_);
  changed_.wait_for(lock, timeout, [&] {
    return (catalog ? state_.catalog_version : state_.map_version) > known;
  });
  return state_;
}

}  // namespace gojodb::controller
