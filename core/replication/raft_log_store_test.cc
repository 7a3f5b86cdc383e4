#include "core/replication/raft_log_store.h"

#include <gtest/gtest.h>

#include <filesystem>

namespace gojodb::replication {
namespace {

using consensus::ConfState;
using consensus::Entry;
using consensus::EntryType;
using consensus::HardState;
using consensus::LogIndex;
using consensus::NodeId;
using consensus::Term;

Entry E(uint64_t term, uint64_t index) {
  return Entry{Term(term), LogIndex(index), EntryType::kNormal, "e" + std::to_string(index)};
}

std::vector<Entry> Range(uint64_t term, uint64_t lo, uint64_t hi) {
  std::vector<Entry> out;
  for (uint64_t i = lo; i <= hi; ++i) out.push_back(E(term, i));
  return out;
}

class RaftLogStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        std::filesystem::temp_directory_path() / ("gojodb-raftlog-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    Reopen();
  }
  void TearDown() override {
    stores_.clear();
    engine_.reset();
    std::filesystem::remove_all(dir_);
  }
  // Closes and reopens the engine and every store: a restart.
  void Reopen() {
    stores_.clear();
    engine_.reset();
    storage::EngineOptions o;
    o.path = dir_.string();
    engine_ = std::move(storage::OpenEngine(o)).value();
    for (uint64_t g : {1, 2}) {
      auto s = RaftLogStore::Open(engine_.get(), g);
      ASSERT_TRUE(s.ok()) << s.status().ToString();
      stores_.push_back(std::move(s).value());
    }
  }
  RaftLogStore& G(int i) { return *stores_[i]; }
  // Writes the batch with one fsync and marks every store durable (the node loop).
  void Commit(storage::WriteBatch& b) {
    ASSERT_TRUE(engine_->Write({.sync = true}, b).ok());
    for (auto& s : stores_) ASSERT_TRUE(s->OnDurable().ok());
  }
  std::vector<uint64_t> Indexes(RaftLogStore& s) {
    std::vector<uint64_t> out;
    auto lo = *s.FirstIndex();
    auto hi = *s.LastIndex();
    if (hi < lo) return out;
    auto ents = s.Entries(lo, hi + 1, UINT64_MAX);
    EXPECT_TRUE(ents.ok());
    for (auto& e : *ents) out.push_back(e.index.value() * 100 + e.term.value());
    return out;
  }

  std::filesystem::path dir_;
  std::unique_ptr<storage::Engine> engine_;
  std::vector<std::unique_ptr<RaftLogStore>> stores_;
};

TEST_F(RaftLogStoreTest, EntriesAndHardStateSurviveRestart) {
  storage::WriteBatch b;
  G(0).StageBootstrap(ConfState{{NodeId(1), NodeId(2), NodeId(3)}, {}, {}, {}, false}, &b);
  ASSERT_TRUE(G(0).StageEntries(Range(1, 1, 5), &b).ok());
  G(0).StageHardState(HardState{Term(1), NodeId(2), LogIndex(3)}, &b);
  ASSERT_TRUE(G(1).StageEntries(Range(7, 1, 2), &b).ok());  // another group, same fsync
  Commit(b);
  Reopen();
  EXPECT_EQ(Indexes(G(0)), (std::vector<uint64_t>{101, 201, 301, 401, 501}));
  EXPECT_EQ(Indexes(G(1)), (std::vector<uint64_t>{107, 207}));
  auto init = G(0).GetInitialState();
  ASSERT_TRUE(init.ok());
  EXPECT_EQ(init->hard_state, (HardState{Term(1), NodeId(2), LogIndex(3)}));
  EXPECT_EQ(init->conf_state.voters.size(), 3u);
  EXPECT_EQ((*G(0).Entries(LogIndex(2), LogIndex(3), UINT64_MAX))[0].data, "e2");
}

TEST_F(RaftLogStoreTest, ConflictingTailIsTruncated) {
  storage::WriteBatch b;
  ASSERT_TRUE(G(0).StageEntries(Range(1, 1, 5), &b).ok());
  Commit(b);
  storage::WriteBatch b2;
  ASSERT_TRUE(G(0).StageEntries(Range(2, 3, 4), &b2).ok());  // a new leader overwrote 3..
  Commit(b2);
  EXPECT_EQ(Indexes(G(0)), (std::vector<uint64_t>{101, 201, 302, 402}));
  Reopen();
  EXPECT_EQ(Indexes(G(0)), (std::vector<uint64_t>{101, 201, 302, 402}));  // 5 stays gone
  storage::WriteBatch gap;
  EXPECT_EQ(G(0).StageEntries(Range(2, 9, 9), &gap).code(), StatusCode::kFailedPrecondition);
}

TEST_F(RaftLogStoreTest, AWriteThatNeverReachedDiskIsLostAndNothingElse) {
  storage::WriteBatch b;
  ASSERT_TRUE(G(0).StageEntries(Range(1, 1, 3), &b).ok());
  Commit(b);
  storage::WriteBatch lost;
  ASSERT_TRUE(G(0).StageEntries(Range(1, 4, 6), &lost).ok());
  G(0).StageHardState(HardState{Term(1), NodeId(1), LogIndex(6)}, &lost);
  // Crash before the batch is written.
  Reopen();
  EXPECT_EQ(Indexes(G(0)), (std::vector<uint64_t>{101, 201, 301}));
  EXPECT_TRUE(G(0).GetInitialState()->hard_state.empty());
}

TEST_F(RaftLogStoreTest, SnapshotReplacesTheLogAndCompactionKeepsTheTail) {
  storage::WriteBatch b;
  ASSERT_TRUE(G(0).StageEntries(Range(1, 1, 10), &b).ok());
  Commit(b);
  storage::WriteBatch early;
  EXPECT_EQ(G(0).StageCompact(LogIndex(5), &early).code(), StatusCode::kFailedPrecondition);

  consensus::Snapshot snap;
  snap.metadata.index = LogIndex(6);
  snap.metadata.term = Term(1);
  snap.metadata.conf_state.voters = {NodeId(1)};
  snap.data = "state@6";
  storage::WriteBatch s;
  ASSERT_TRUE(G(0).StageSnapshot(snap, &s).ok());
  ASSERT_TRUE(G(0).StageEntries(Range(2, 7, 8), &s).ok());  // entries after a snapshot
  Commit(s);
  EXPECT_EQ(*G(0).FirstIndex(), LogIndex(7));
  EXPECT_EQ(Indexes(G(0)), (std::vector<uint64_t>{702, 802}));
  Reopen();
  EXPECT_EQ(Indexes(G(0)), (std::vector<uint64_t>{702, 802}));
  EXPECT_EQ(G(0).GetSnapshot()->data, "state@6");
  EXPECT_EQ(*G(0).TermAt(LogIndex(6)), Term(1));
  storage::WriteBatch old;
  EXPECT_FALSE(G(0).StageSnapshot(snap, &old).ok());  // not newer

  storage::WriteBatch more;
  ASSERT_TRUE(G(0).StageEntries(Range(2, 9, 12), &more).ok());
  Commit(more);
  // The state machine snapshots at 10, keeping the log; compaction then drops up to it.
  storage::WriteBatch cs;
  ASSERT_TRUE(
      G(0).StageCreateSnapshot(LogIndex(10), snap.metadata.conf_state, "state@10", &cs).ok());
  Commit(cs);
  EXPECT_EQ(Indexes(G(0)), (std::vector<uint64_t>{702, 802, 902, 1002, 1102, 1202}));
  storage::WriteBatch c;
  ASSERT_TRUE(G(0).StageCompact(LogIndex(9), &c).ok());
  Commit(c);
  EXPECT_EQ(Indexes(G(0)), (std::vector<uint64_t>{1002, 1102, 1202}));
  Reopen();
  // Reopening starts after the snapshot at 10: the log's tail is intact.
  EXPECT_EQ(G(0).GetSnapshot()->data, "state@10");
  EXPECT_EQ(Indexes(G(0)), (std::vector<uint64_t>{1102, 1202}));
  EXPECT_EQ(*G(0).TermAt(LogIndex(10)), Term(2));
}

// A snapshot without data (the state is in the engine) is not sent; the same index may
// be recorded again with the data for a follower, but not again without, nor over data.
TEST_F(RaftLogStoreTest, ASnapshotWithoutDataIsGivenDataAtTheSameIndex) {
  storage::WriteBatch b;
  ASSERT_TRUE(G(0).StageEntries(Range(1, 1, 10), &b).ok());
  Commit(b);
  consensus::ConfState cs;
  cs.voters = {NodeId(1)};
  storage::WriteBatch bare;
  ASSERT_TRUE(G(0).StageCreateSnapshot(LogIndex(8), cs, "", &bare).ok());
  Commit(bare);
  EXPECT_EQ(G(0).GetSnapshot().status().code(),
            consensus::ErrSnapshotTemporarilyUnavailable().code());
  EXPECT_TRUE(G(0).TakeSnapshotWanted());
  storage::WriteBatch again;
  EXPECT_FALSE(G(0).StageCreateSnapshot(LogIndex(8), cs, "", &again).ok());
  storage::WriteBatch older;
  EXPECT_FALSE(G(0).StageCreateSnapshot(LogIndex(7), cs, "state@7", &older).ok());
  storage::WriteBatch filled;
  ASSERT_TRUE(G(0).StageCreateSnapshot(LogIndex(8), cs, "state@8", &filled).ok());
  Commit(filled);
  ASSERT_TRUE(G(0).GetSnapshot().ok());
  EXPECT_EQ(G(0).GetSnapshot()->data, "state@8");
  EXPECT_EQ(G(0).GetSnapshot()->metadata.index, LogIndex(8));
  storage::WriteBatch over;
  EXPECT_FALSE(G(0).StageCreateSnapshot(LogIndex(8), cs, "other", &over).ok());
  Reopen();
  EXPECT_EQ(G(0).GetSnapshot()->data, "state@8");
  EXPECT_EQ(Indexes(G(0)), (std::vector<uint64_t>{901, 1001})) << "the tail is kept";
}

TEST_F(RaftLogStoreTest, CorruptEntriesAreDataLossNotCrashes) {
  storage::WriteBatch b;
  ASSERT_TRUE(G(0).StageEntries(Range(1, 1, 3), &b).ok());
  Commit(b);
  storage::WriteBatch bad;
  std::string key(1, 'E');
  for (int i = 0; i < 7; ++i) key.push_back('\0');
  key.push_back('\x01');
  for (int i = 0; i < 7; ++i) key.push_back('\0');
  key.push_back('\x02');
  bad.Put(storage::ColumnFamily::kRaft, key, "garbage");
  ASSERT_TRUE(engine_->Write({}, bad).ok());
  stores_.clear();
  auto reopened = RaftLogStore::Open(engine_.get(), 1);
  ASSERT_FALSE(reopened.ok());
  EXPECT_EQ(reopened.status().code(), StatusCode::kDataLoss);
}

}  // namespace
}  // namespace gojodb::replication
