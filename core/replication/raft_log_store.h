// RaftLogStore: one Raft group's durable log on the node's storage Engine.
//
// It is the consensus::Storage the group's RawNode reads, backed by the engine's `raft`
// column family. Writes are staged into a WriteBatch that the caller shares between all
// groups of the node and writes once, with one fsync, per loop iteration (group
// commit); only after that write returns does the caller call OnDurable(), which makes
// the staged changes visible to reads. A crash before the write loses the staged tail
// and nothing else: reopening loads exactly what was durable.
//
// Layout (raft column family), per group g:
//   'E' g:u64be index:u64be -> EncodeEntry        log entries
//   'H' g:u64be             -> EncodeHardState    term, vote, commit
//   'S' g:u64be             -> snapshot record    metadata (and the bootstrap ConfState)
//   'C' g:u64be             -> membership applied after the snapshot (index, ConfState)
// Compaction never removes entries past the durable snapshot, so reopening always
// finds a contiguous log starting right after the snapshot.
//
// Thread-safety: reads may come from any thread (the in-memory view is locked);
// Stage* and OnDurable are called by the one thread that drives the group.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "core/consensus/storage.h"
#include "core/storage_engine/engine.h"

namespace gojodb::replication {

class RaftLogStore final : public consensus::Storage {
 public:
  // Loads group `group` (empty if new). `engine` is not owned and must outlive this.
  static Result<std::unique_ptr<RaftLogStore>> Open(storage::Engine* engine, uint64_t group);
  // Deletes every record of group `group` (entries, hard state, snapshot, membership).
  // REQUIRES: no RaftLogStore of the group is open.
  static Status Destroy(storage::Engine* engine, uint64_t group);

  Result<consensus::InitialState> GetInitialState() const override;
  Result<std::vector<consensus::Entry>> Entries(consensus::LogIndex lo, consensus::LogIndex hi,
                                                uint64_t max_bytes) const override;
  Result<consensus::Term> TermAt(consensus::LogIndex i) const override;
  Result<consensus::LogIndex> FirstIndex() const override;
  Result<consensus::LogIndex> LastIndex() const override;
  // As consensus::MemoryStorage::FirstIndexWithin, over the entries held.
  consensus::LogIndex FirstIndexWithin(consensus::LogIndex last, uint64_t max_bytes) const {
    return mem_.FirstIndexWithin(last, max_bytes);
  }
  // A stored snapshot without data (a group founded by a split starts from one: its
  // state is already in the engine) is not sent: GetSnapshot answers "temporarily
  // unavailable" and records that one is wanted, and the node then takes a real one.
  Result<consensus::Snapshot> GetSnapshot() const override;
  // The stored snapshot as it is, data or not.
  Result<consensus::Snapshot> StoredSnapshot() const;
  // Whether GetSnapshot was asked for a snapshot it could not give since the last call.
  bool TakeSnapshotWanted() { return snapshot_wanted_.exchange(false); }
  // The stored snapshot's data is not to be sent any more (the state machine said so):
  // GetSnapshot answers as for one without data until a new snapshot is created.
  void MarkSnapshotOutdated() { snapshot_outdated_ = true; }

  // Staging. REQUIRES: the previous staged changes were written and OnDurable() called
  // (or the batch was dropped and DiscardStaged() called).
  void StageBootstrap(const consensus::ConfState& cs, storage::WriteBatch* batch);
  void StageHardState(const consensus::HardState& hs, storage::WriteBatch* batch);
  // Replaces the whole log with the snapshot (as MemoryStorage::ApplySnapshot does).
  Status StageSnapshot(const consensus::Snapshot& snap, storage::WriteBatch* batch);
  // Records a snapshot of the state machine at applied index `index` (<= LastIndex),
  // keeping the log; compaction may then drop entries up to it. `index` is above the
  // stored snapshot's, or equal to it to give data to a stored snapshot without any.
  Status StageCreateSnapshot(consensus::LogIndex index, const consensus::ConfState& cs,
                             std::string data, storage::WriteBatch* batch);
  // Appends, first truncating any existing entries at or after entries[0].index.
  Status StageEntries(const std::vector<consensus::Entry>& entries, storage::WriteBatch* batch);
  // Drops entries before `index`. FAILED_PRECONDITION past the durable snapshot.
  Status StageCompact(consensus::LogIndex index, storage::WriteBatch* batch);
  // Records the membership as of the conf change entry at `index`, applied. A restart
  // then starts from it (GetInitialState) rather than from the snapshot's, because the
  // state machine's applied index may already be past that entry.
  void StageConfState(consensus::LogIndex index, const consensus::ConfState& cs,
                      storage::WriteBatch* batch);
  // The index of the last conf change recorded by StageConfState that is newer than the
  // snapshot (0 if none): entries up to it are already in GetInitialState's ConfState.
  consensus::LogIndex ConfIndex() const;

  // The batch holding the staged changes is durable: make them visible to reads.
  Status OnDurable();
  // The batch was not written: forget the staged changes.
  void DiscardStaged();

  uint64_t group() const { return group_; }

 private:
  RaftLogStore(storage::Engine* engine, uint64_t group) : engine_(engine), group_(group) {}
  mutable std::atomic<bool> snapshot_wanted_{false};
  std::atomic<bool> snapshot_outdated_{false};
  std::string EntryKey(consensus::LogIndex i) const;
  std::string MetaKey(char tag) const;

  struct Staged {
    std::optional<consensus::ConfState> bootstrap;
    std::optional<consensus::HardState> hard_state;
    std::optional<consensus::Snapshot> snapshot;          // replaces the log
    std::optional<consensus::Snapshot> created_snapshot;  // keeps the log
    std::vector<consensus::Entry> entries;
    std::optional<consensus::LogIndex> compact;
    std::optional<std::pair<consensus::LogIndex, consensus::ConfState>> conf;
  };

  storage::Engine* const engine_;
  const uint64_t group_;
  consensus::MemoryStorage mem_;  // the durable state, for reads
  mutable std::mutex conf_mu_;
  std::optional<std::pair<consensus::LogIndex, consensus::ConfState>> conf_;  // GUARDED_BY
  Staged staged_;
};

}  // namespace gojodb::replication
