#include "core/replication/raft_log_store.h"

#include "core/consensus/codec.h"
#include "core/mvcc/key_codec.h"

namespace gojodb::replication {

using consensus::Entry;
using consensus::LogIndex;

namespace {
constexpr auto kRaftCf = storage::ColumnFamily::kRaft;

std::string EncodeSnapshotRecord(const consensus::Snapshot& s) {
  std::string meta = consensus::EncodeSnapshotMetadata(s.metadata);
  std::string out;
  mvcc::AppendUint32(&out, static_cast<uint32_t>(meta.size()));
  out += meta;
  out += s.data;
  return out;
}

Result<consensus::Snapshot> DecodeSnapshotRecord(std::string_view in) {
  if (in.size() < 4) return Status::Corruption("raft snapshot record is truncated");
  uint32_t n = mvcc::ReadUint32(in);
  if (in.size() - 4 < n) return Status::Corruption("raft snapshot record is truncated");
  consensus::Snapshot s;
  ASSIGN_OR_RETURN(s.metadata, consensus::DecodeSnapshotMetadata(in.substr(4, n)));
  s.data.assign(in.substr(4 + n));
  return s;
}
}  // namespace

std::string RaftLogStore::EntryKey(LogIndex i) const {
  std::string k(1, 'E');
  mvcc::AppendUint64(&k, group_);
  mvcc::AppendUint64(&k, i.value());
  return k;
}

std::string RaftLogStore::MetaKey(char tag) const {
  std::string k(1, tag);
  mvcc::AppendUint64(&k, group_);
  return k;
}

Status RaftLogStore::Destroy(storage::Engine* engine, uint64_t group) {
  RaftLogStore keys(engine, group);
  storage::WriteBatch b;
  b.DeleteRange(kRaftCf, keys.EntryKey(LogIndex(0)), keys.EntryKey(LogIndex::Max()));
  for (char tag : {'S', 'C', 'H'}) b.Delete(kRaftCf, keys.MetaKey(tag));
  return engine->Write({.sync = true}, b);
}

Result<std::unique_ptr<RaftLogStore>> RaftLogStore::Open(storage::Engine* engine, uint64_t group) {
  std::unique_ptr<RaftLogStore> s(new RaftLogStore(engine, group));
  ASSIGN_OR_RETURN(auto snap_rec, engine->Get({}, kRaftCf, s->MetaKey('S')));
  LogIndex snap_index;
  if (snap_rec) {
    ASSIGN_OR_RETURN(auto snap, DecodeSnapshotRecord(*snap_rec));
    snap_index = snap.metadata.index;
    if (snap.empty()) {
      s->mem_.Bootstrap(snap.metadata.conf_state);
    } else {
      RETURN_IF_ERROR(s->mem_.ApplySnapshot(snap));
    }
  }
  ASSIGN_OR_RETURN(auto conf_rec, engine->Get({}, kRaftCf, s->MetaKey('C')));
  if (conf_rec) {
    ASSIGN_OR_RETURN(auto md, consensus::DecodeSnapshotMetadata(*conf_rec));
    if (md.index > snap_index) s->conf_ = std::make_pair(md.index, md.conf_state);
  }
  ASSIGN_OR_RETURN(auto hs, engine->Get({}, kRaftCf, s->MetaKey('H')));
  if (hs) {
    ASSIGN_OR_RETURN(auto hard, consensus::DecodeHardState(*hs));
    s->mem_.SetHardState(hard);
  }
  storage::ReadOptions ro;
  ro.lower_bound = s->EntryKey(snap_index + 1);
  ro.upper_bound = s->EntryKey(LogIndex::Max());
  auto it = engine->NewIterator(ro, kRaftCf);
  std::vector<Entry> entries;
  LogIndex expect = snap_index + 1;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    ASSIGN_OR_RETURN(Entry e, consensus::DecodeEntry(it->value()));
    if (e.index != expect || it->key() != s->EntryKey(e.index)) {
      return Status::Corruption("raft log of group " + std::to_string(group) + " has a gap at " +
                                std::to_string(expect.value()));
    }
    entries.push_back(std::move(e));
    ++expect;
  }
  RETURN_IF_ERROR(it->status());
  if (!entries.empty()) RETURN_IF_ERROR(s->mem_.Append(entries));
  return s;
}

Result<consensus::InitialState> RaftLogStore::GetInitialState() const {
  ASSIGN_OR_RETURN(auto init, mem_.GetInitialState());
  std::lock_guard lock(conf_mu_);
  if (conf_) init.conf_state = conf_->second;
  return init;
}

LogIndex RaftLogStore::ConfIndex() const {
  std::lock_guard lock(conf_mu_);
  return conf_ ? conf_->first : LogIndex();
}

void RaftLogStore::StageConfState(LogIndex index, const consensus::ConfState& cs,
                                  storage::WriteBatch* batch) {
  consensus::SnapshotMetadata md;
  md.index = index;
  md.conf_state = cs;
  batch->Put(kRaftCf, MetaKey('C'), consensus::EncodeSnapshotMetadata(md));
  staged_.conf = std::make_pair(index, cs);
}
Result<std::vector<Entry>> RaftLogStore::Entries(LogIndex lo, LogIndex hi,
                                                 uint64_t max_bytes) const {
  return mem_.Entries(lo, hi, max_bytes);
}
Result<consensus::Term> RaftLogStore::TermAt(LogIndex i) const { return mem_.TermAt(i); }
Result<LogIndex> RaftLogStore::FirstIndex() const { return mem_.FirstIndex(); }
Result<LogIndex> RaftLogStore::LastIndex() const { return mem_.LastIndex(); }
Result<consensus::Snapshot> RaftLogStore::GetSnapshot() const {
  ASSIGN_OR_RETURN(auto snap, mem_.GetSnapshot());
  if (snap.metadata.index > LogIndex() && (snap.data.empty() || snapshot_outdated_)) {
    snapshot_wanted_ = true;
    return consensus::ErrSnapshotTemporarilyUnavailable();
  }
  return snap;
}

Result<consensus::Snapshot> RaftLogStore::StoredSnapshot() const { return mem_.GetSnapshot(); }

void RaftLogStore::StageBootstrap(const consensus::ConfState& cs, storage::WriteBatch* batch) {
  consensus::Snapshot s;
  s.metadata.conf_state = cs;
  batch->Put(kRaftCf, MetaKey('S'), EncodeSnapshotRecord(s));
  staged_.bootstrap = cs;
}

void RaftLogStore::StageHardState(const consensus::HardState& hs, storage::WriteBatch* batch) {
  batch->Put(kRaftCf, MetaKey('H'), consensus::EncodeHardState(hs));
  staged_.hard_state = hs;
}

Status RaftLogStore::StageSnapshot(const consensus::Snapshot& snap, storage::WriteBatch* batch) {
  ASSIGN_OR_RETURN(auto cur, mem_.GetSnapshot());
  if (snap.metadata.index <= cur.metadata.index) return consensus::ErrSnapOutOfDate();
  batch->DeleteRange(kRaftCf, EntryKey(LogIndex(0)), EntryKey(LogIndex::Max()));
  batch->Put(kRaftCf, MetaKey('S'), EncodeSnapshotRecord(snap));
  batch->Delete(kRaftCf, MetaKey('C'));  // the snapshot's membership is newer
  staged_.snapshot = snap;
  return Status::OK();
}

Status RaftLogStore::StageCreateSnapshot(LogIndex index, const consensus::ConfState& cs,
                                         std::string data, storage::WriteBatch* batch) {
  ASSIGN_OR_RETURN(auto cur, mem_.GetSnapshot());
  // The same index again only to add the data a snapshot without it lacks.
  if (index < cur.metadata.index ||
      (index == cur.metadata.index && (!cur.data.empty() || data.empty()))) {
    return consensus::ErrSnapOutOfDate();
  }
  ASSIGN_OR_RETURN(LogIndex last, mem_.LastIndex());
  if (index > last) return Status::FailedPrecondition("snapshot index is past the log's end");
  consensus::Snapshot snap;
  ASSIGN_OR_RETURN(snap.metadata.term, mem_.TermAt(index));
  snap.metadata.index = index;
  snap.metadata.conf_state = cs;
  snap.data = std::move(data);
  batch->Put(kRaftCf, MetaKey('S'), EncodeSnapshotRecord(snap));
  staged_.created_snapshot = std::move(snap);
  return Status::OK();
}

Status RaftLogStore::StageEntries(const std::vector<Entry>& entries, storage::WriteBatch* batch) {
  if (entries.empty()) return Status::OK();
  for (size_t i = 1; i < entries.size(); ++i) {
    if (entries[i].index != entries[i - 1].index + 1) {
      return Status::InvalidArgument("raft entries to append are not contiguous");
    }
  }
  LogIndex first;
  LogIndex last;
  if (staged_.snapshot) {
    first = staged_.snapshot->metadata.index + 1;
    last = staged_.snapshot->metadata.index;
  } else {
    ASSIGN_OR_RETURN(first, mem_.FirstIndex());
    ASSIGN_OR_RETURN(last, mem_.LastIndex());
  }
  const LogIndex head = entries.front().index;
  if (head > last + 1) {
    return Status::FailedPrecondition("raft entries start at " + std::to_string(head.value()) +
                                      " past the log's end " + std::to_string(last.value()));
  }
  if (entries.back().index < first) return Status::OK();  // all compacted already
  if (head <= last) batch->DeleteRange(kRaftCf, EntryKey(head), EntryKey(last + 1));
  for (const auto& e : entries) {
    if (e.index < first) continue;
    batch->Put(kRaftCf, EntryKey(e.index), consensus::EncodeEntry(e));
  }
  staged_.entries.insert(staged_.entries.end(), entries.begin(), entries.end());
  return Status::OK();
}

Status RaftLogStore::StageCompact(LogIndex index, storage::WriteBatch* batch) {
  ASSIGN_OR_RETURN(auto snap, mem_.GetSnapshot());
  if (index > snap.metadata.index) {
    return Status::FailedPrecondition("cannot compact the raft log past the durable snapshot");
  }
  ASSIGN_OR_RETURN(LogIndex first, mem_.FirstIndex());
  if (index < first) return consensus::ErrCompacted();
  batch->DeleteRange(kRaftCf, EntryKey(first), EntryKey(index));
  staged_.compact = index;
  return Status::OK();
}

Status RaftLogStore::OnDurable() {
  Staged s = std::move(staged_);
  staged_ = Staged();
  if (s.bootstrap) mem_.Bootstrap(*s.bootstrap);
  if (s.snapshot) {
    RETURN_IF_ERROR(mem_.ApplySnapshot(*s.snapshot));
    snapshot_outdated_ = false;  // the leader's, as of now
    std::lock_guard lock(conf_mu_);
    conf_.reset();
  }
  if (s.conf) {
    std::lock_guard lock(conf_mu_);
    conf_ = std::move(s.conf);
  }
  if (!s.entries.empty()) {
    ASSIGN_OR_RETURN(LogIndex first, mem_.FirstIndex());
    std::vector<Entry> live;
    for (auto& e : s.entries) {
      if (e.index >= first) live.push_back(std::move(e));
    }
    if (!live.empty()) RETURN_IF_ERROR(mem_.Append(live));
  }
  if (s.created_snapshot) {
    const auto& md = s.created_snapshot->metadata;
    auto made = mem_.CreateSnapshot(md.index, &md.conf_state, s.created_snapshot->data);
    if (!made.ok()) return made.status();
    snapshot_outdated_ = false;  // taken after whatever outdated the last one
  }
  if (s.hard_state) mem_.SetHardState(*s.hard_state);
  if (s.compact) RETURN_IF_ERROR(mem_.Compact(*s.compact));
  return Status::OK();
}

void RaftLogStore::DiscardStaged() { staged_ = Staged(); }

}  // namespace gojodb::replication
