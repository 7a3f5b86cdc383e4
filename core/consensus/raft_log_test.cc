// MemoryStorage, the unstable tail and RaftLog.
#include "core/consensus/raft_log.h"

#include <gtest/gtest.h>

namespace gojodb::consensus {
namespace {

Entry E(uint64_t term, uint64_t index) {
  return Entry{Term(term), LogIndex(index), EntryType::kNormal, {}};
}

std::vector<Entry> Es(std::initializer_list<std::pair<uint64_t, uint64_t>> ti) {
  std::vector<Entry> out;
  for (auto [t, i] : ti) out.push_back(E(t, i));
  return out;
}

TEST(MemoryStorageTest, TermEntriesAndErrors) {
  MemoryStorage s;
  ASSERT_TRUE(s.Append(Es({{1, 1}, {2, 2}, {3, 3}, {3, 4}})).ok());
  EXPECT_EQ(*s.FirstIndex(), LogIndex(1));
  EXPECT_EQ(*s.LastIndex(), LogIndex(4));
  EXPECT_EQ(*s.TermAt(LogIndex(3)), Term(3));
  EXPECT_TRUE(IsUnavailable(s.TermAt(LogIndex(5)).status()));
  auto ents = s.Entries(LogIndex(2), LogIndex(5), kNoLimit);
  ASSERT_TRUE(ents.ok());
  EXPECT_EQ(ents->size(), 3u);
  // The size limit keeps at least one entry.
  EXPECT_EQ(s.Entries(LogIndex(2), LogIndex(5), 1)->size(), 1u);
  EXPECT_EQ(s.Entries(LogIndex(2), LogIndex(5), 48)->size(), 2u);

  ASSERT_TRUE(s.Compact(LogIndex(3)).ok());
  EXPECT_EQ(*s.FirstIndex(), LogIndex(4));
  EXPECT_EQ(*s.TermAt(LogIndex(3)), Term(3));  // the dummy keeps the term
  EXPECT_TRUE(IsCompacted(s.TermAt(LogIndex(2)).status()));
  EXPECT_TRUE(IsCompacted(s.Entries(LogIndex(3), LogIndex(5), kNoLimit).status()));
  EXPECT_TRUE(IsCompacted(s.Compact(LogIndex(2))));
}

// How far back the entries up to an index fit in a number of bytes (log compaction by
// bytes), and entries kept by a compaction keep their data.
TEST(MemoryStorageTest, FirstIndexWithinCountsEntryData) {
  MemoryStorage s;
  std::vector<Entry> ents = Es({{1, 1}, {1, 2}, {1, 3}, {1, 4}, {1, 5}});
  for (auto& e : ents) e.data = std::string(10 * e.index.value(), 'x');  // 10, 20, ... 50
  ASSERT_TRUE(s.Append(ents).ok());
  EXPECT_EQ(s.FirstIndexWithin(LogIndex(5), 1000), LogIndex(1));  // all 150 bytes fit
  EXPECT_EQ(s.FirstIndexWithin(LogIndex(5), 90), LogIndex(4));    // 50 + 40
  EXPECT_EQ(s.FirstIndexWithin(LogIndex(5), 89), LogIndex(5));    // 50
  EXPECT_EQ(s.FirstIndexWithin(LogIndex(5), 49), LogIndex(6));    // not even entry 5
  EXPECT_EQ(s.FirstIndexWithin(LogIndex(3), 50), LogIndex(2));    // 30 + 20
  EXPECT_EQ(s.FirstIndexWithin(LogIndex(9), 90), LogIndex(4));    // past the end: from 5
  ASSERT_TRUE(s.Compact(LogIndex(3)).ok());
  EXPECT_EQ(s.FirstIndexWithin(LogIndex(5), 1000), LogIndex(4));
  auto kept = s.Entries(LogIndex(4), LogIndex(6), kNoLimit);
  ASSERT_TRUE(kept.ok());
  ASSERT_EQ(kept->size(), 2u);
  EXPECT_EQ((*kept)[0].data, std::string(40, 'x'));
  EXPECT_EQ((*kept)[1].data, std::string(50, 'x'));
}

TEST(MemoryStorageTest, AppendTruncatesConflictsAndSkipsCompacted) {
  MemoryStorage s;
  ASSERT_TRUE(s.Append(Es({{1, 1}, {1, 2}, {1, 3}})).ok());
  ASSERT_TRUE(s.Append(Es({{2, 2}})).ok());
  EXPECT_EQ(*s.LastIndex(), LogIndex(2));
  EXPECT_EQ(*s.TermAt(LogIndex(2)), Term(2));
  EXPECT_FALSE(s.Append(Es({{2, 5}})).ok());  // gap
  ASSERT_TRUE(s.Compact(LogIndex(2)).ok());
  ASSERT_TRUE(s.Append(Es({{1, 1}, {2, 2}, {2, 3}})).ok());
  EXPECT_EQ(*s.LastIndex(), LogIndex(3));
}

TEST(MemoryStorageTest, SnapshotsAreMonotonic) {
  MemoryStorage s;
  ASSERT_TRUE(s.Append(Es({{1, 1}, {1, 2}, {2, 3}})).ok());
  ConfState cs;
  cs.voters = {NodeId(1)};
  auto snap = s.CreateSnapshot(LogIndex(2), &cs, "data");
  ASSERT_TRUE(snap.ok());
  EXPECT_EQ(snap->metadata.term, Term(1));
  EXPECT_TRUE(IsSnapOutOfDate(s.CreateSnapshot(LogIndex(1), &cs, "").status()));
  Snapshot newer;
  newer.metadata.index = LogIndex(10);
  newer.metadata.term = Term(4);
  ASSERT_TRUE(s.ApplySnapshot(newer).ok());
  EXPECT_EQ(*s.FirstIndex(), LogIndex(11));
  EXPECT_EQ(*s.LastIndex(), LogIndex(10));
  EXPECT_TRUE(IsSnapOutOfDate(s.ApplySnapshot(newer)));
  s.SetSnapshotUnavailable(true);
  EXPECT_TRUE(IsSnapshotTemporarilyUnavailable(s.GetSnapshot().status()));
}

TEST(RaftLogTest, FindConflict) {
  MemoryStorage s;
  RaftLog log(&s, kNoLimit);
  log.Append(Es({{1, 1}, {2, 2}, {3, 3}}));
  EXPECT_EQ(log.FindConflict({}), LogIndex(0));
  EXPECT_EQ(log.FindConflict(Es({{1, 1}, {2, 2}})), LogIndex(0));
  EXPECT_EQ(log.FindConflict(Es({{2, 2}, {3, 3}, {4, 4}})), LogIndex(4));  // new entry
  EXPECT_EQ(log.FindConflict(Es({{1, 1}, {4, 2}})), LogIndex(2));
}

TEST(RaftLogTest, MaybeAppendRules) {
  MemoryStorage s;
  RaftLog log(&s, kNoLimit);
  log.Append(Es({{1, 1}, {2, 2}, {3, 3}}));
  // Mismatching previous term: rejected, nothing changes.
  EXPECT_FALSE(log.MaybeAppend(LogIndex(3), Term(2), LogIndex(3), Es({{4, 4}})));
  EXPECT_EQ(log.LastIndex(), LogIndex(3));
  // Previous beyond the end: rejected.
  EXPECT_FALSE(log.MaybeAppend(LogIndex(4), Term(3), LogIndex(3), {}));
  // Match: appends, commits min(leader commit, last new).
  auto last = log.MaybeAppend(LogIndex(3), Term(3), LogIndex(10), Es({{4, 4}}));
  ASSERT_TRUE(last);
  EXPECT_EQ(*last, LogIndex(4));
  EXPECT_EQ(log.committed(), LogIndex(4));
  // A conflicting suffix is replaced... but only past the commit index. Rewind commit
  // in a fresh log to check truncation.
  RaftLog log2(&s, kNoLimit);
  log2.Append(Es({{1, 1}, {1, 2}, {1, 3}}));
  ASSERT_TRUE(log2.MaybeAppend(LogIndex(1), Term(1), LogIndex(1), Es({{2, 2}})));
  EXPECT_EQ(log2.LastIndex(), LogIndex(2));  // the conflict at 2 truncated entry 3
  EXPECT_EQ(log2.ZeroTermOnError(LogIndex(2)), Term(2));
}

TEST(RaftLogTest, FindConflictByTermSkipsTerms) {
  MemoryStorage s;
  RaftLog log(&s, kNoLimit);
  log.Append(Es({{1, 1}, {2, 2}, {2, 3}, {5, 4}, {5, 5}, {5, 6}}));
  EXPECT_EQ(log.FindConflictByTerm(LogIndex(6), Term(3)), std::make_pair(LogIndex(3), Term(2)));
  EXPECT_EQ(log.FindConflictByTerm(LogIndex(6), Term(5)), std::make_pair(LogIndex(6), Term(5)));
  EXPECT_EQ(log.FindConflictByTerm(LogIndex(6), Term(1)), std::make_pair(LogIndex(1), Term(1)));
  EXPECT_EQ(log.FindConflictByTerm(LogIndex(6), Term(0)), std::make_pair(LogIndex(0), Term(0)));
}

TEST(RaftLogTest, UpToDateComparesLastTermThenIndex) {
  MemoryStorage s;
  RaftLog log(&s, kNoLimit);
  log.Append(Es({{1, 1}, {2, 2}, {3, 3}}));
  EXPECT_TRUE(log.IsUpToDate(LogIndex(1), Term(4)));
  EXPECT_FALSE(log.IsUpToDate(LogIndex(9), Term(2)));
  EXPECT_TRUE(log.IsUpToDate(LogIndex(3), Term(3)));
  EXPECT_FALSE(log.IsUpToDate(LogIndex(2), Term(3)));
}

TEST(RaftLogTest, SliceSpansStorageAndUnstableAndReportsCompaction) {
  MemoryStorage s;
  ASSERT_TRUE(s.Append(Es({{1, 1}, {1, 2}, {1, 3}, {1, 4}})).ok());
  ASSERT_TRUE(s.Compact(LogIndex(2)).ok());
  RaftLog log(&s, kNoLimit);
  log.Append(Es({{2, 5}, {2, 6}}));
  auto all = log.Slice(LogIndex(3), LogIndex(7), kNoLimit);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 4u);
  EXPECT_EQ((*all)[3], E(2, 6));
  EXPECT_TRUE(IsCompacted(log.Slice(LogIndex(2), LogIndex(4), kNoLimit).status()));
  EXPECT_EQ(log.Slice(LogIndex(3), LogIndex(7), 60)->size(), 2u);
  EXPECT_EQ(log.committed(), LogIndex(2));  // restored from the snapshot position
  EXPECT_TRUE(IsCompacted(log.TermAt(LogIndex(1)).status()));
  EXPECT_EQ(*log.TermAt(LogIndex(2)), Term(1));
}

TEST(RaftLogTest, StableToIgnoresReplacedEntries) {
  MemoryStorage s;
  RaftLog log(&s, kNoLimit);
  log.Append(Es({{1, 1}, {1, 2}}));
  // The tail was replaced by a newer leader before the old one was persisted.
  log.Append(Es({{2, 2}}));
  log.StableTo(LogIndex(2), Term(1));
  EXPECT_EQ(log.UnstableEntries().size(), 2u);
  log.StableTo(LogIndex(2), Term(2));
  EXPECT_TRUE(log.UnstableEntries().empty());
}

TEST(RaftLogTest, NextCommittedEntriesRespectsAppliedAndLimit) {
  MemoryStorage s;
  RaftLog log(&s, 30);
  log.Append(Es({{1, 1}, {1, 2}, {1, 3}}));
  EXPECT_FALSE(log.HasNextCommittedEntries());
  log.CommitTo(LogIndex(3));
  EXPECT_EQ(log.NextCommittedEntries().size(), 1u);  // 24 bytes each, limit 30
  log.AppliedTo(LogIndex(1));
  EXPECT_EQ(log.NextCommittedEntries()[0].index, LogIndex(2));
}

TEST(RaftLogTest, RestoreFromSnapshot) {
  MemoryStorage s;
  RaftLog log(&s, kNoLimit);
  log.Append(Es({{1, 1}}));
  Snapshot snap;
  snap.metadata.index = LogIndex(100);
  snap.metadata.term = Term(5);
  log.Restore(snap);
  EXPECT_EQ(log.committed(), LogIndex(100));
  EXPECT_EQ(log.LastIndex(), LogIndex(100));
  EXPECT_EQ(log.FirstIndex(), LogIndex(101));
  EXPECT_EQ(*log.TermAt(LogIndex(100)), Term(5));
  EXPECT_TRUE(log.HasPendingSnapshot());
  log.StableSnapTo(LogIndex(100));
  EXPECT_FALSE(log.HasPendingSnapshot());
}

}  // namespace
}  // namespace gojodb::consensus
