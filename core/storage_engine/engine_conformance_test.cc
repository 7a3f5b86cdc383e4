// One suite, every adapter: the behaviour GojoDB relies on from an Engine.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>

#include "core/storage_engine/engine.h"

namespace gojodb::storage {
namespace {

namespace fs = std::filesystem;

class DropPrefixFilter final : public KeyFilter {
 public:
  bool Keep(std::string_view key, std::string_view) override {
    if (!last_.empty()) {
      EXPECT_LT(last_, std::string(key)) << "filter must see ascending keys";
    }
    last_ = std::string(key);
    return key.substr(0, 5) != "drop/";
  }
  std::string last_;
};
class DropPrefixFactory final : public KeyFilterFactory {
 public:
  std::unique_ptr<KeyFilter> NewFilter() override { return std::make_unique<DropPrefixFilter>(); }
};

class EngineConformance : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::replace(name.begin(), name.end(), '/', '_');
    dir_ = fs::temp_directory_path() / ("gojodb-engine-" + std::to_string(::getpid()) + "-" + name);
    fs::remove_all(dir_);
    Reopen();
  }
  void TearDown() override {
    engine_.reset();
    fs::remove_all(dir_);
  }
  void Reopen() {
    engine_.reset();
    EngineOptions o;
    o.kind = GetParam();
    o.path = dir_.string();
    o.filters[ColumnFamily::kWrite] = std::make_shared<DropPrefixFactory>();
    auto r = OpenEngine(o);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    engine_ = std::move(r).value();
  }
  void Put(ColumnFamily cf, std::string k, std::string v) {
    WriteBatch b;
    b.Put(cf, k, v);
    ASSERT_TRUE(engine_->Write({}, b).ok());
  }
  std::optional<std::string> Get(ColumnFamily cf, std::string k, const Snapshot* s = nullptr) {
    ReadOptions ro;
    ro.snapshot = s;
    auto r = engine_->Get(ro, cf, k);
    EXPECT_TRUE(r.ok());
    return r.ok() ? *r : std::nullopt;
  }
  std::vector<std::string> Keys(ReadOptions ro, ColumnFamily cf, bool reverse = false) {
    auto it = engine_->NewIterator(ro, cf);
    std::vector<std::string> out;
    if (reverse) {
      for (it->SeekToLast(); it->Valid(); it->Prev()) out.emplace_back(it->key());
    } else {
      for (it->SeekToFirst(); it->Valid(); it->Next()) out.emplace_back(it->key());
    }
    EXPECT_TRUE(it->status().ok());
    return out;
  }

  fs::path dir_;
  std::unique_ptr<Engine> engine_;
};

constexpr auto kD = ColumnFamily::kDefault;
constexpr auto kW = ColumnFamily::kWrite;

TEST_P(EngineConformance, PutGetDelete) {
  EXPECT_EQ(Get(kD, "a"), std::nullopt);
  Put(kD, "a", "1");
  EXPECT_EQ(Get(kD, "a"), "1");
  Put(kD, "a", "2");
  EXPECT_EQ(Get(kD, "a"), "2");
  WriteBatch b;
  b.Delete(kD, "a");
  ASSERT_TRUE(engine_->Write({}, b).ok());
  EXPECT_EQ(Get(kD, "a"), std::nullopt);
  Put(kD, std::string("\0\xff", 2), std::string("\0bin", 4));
  EXPECT_EQ(Get(kD, std::string("\0\xff", 2)), std::string("\0bin", 4));
}

TEST_P(EngineConformance, ColumnFamiliesAreSeparate) {
  Put(kD, "k", "default");
  Put(kW, "k", "write");
  EXPECT_EQ(Get(kD, "k"), "default");
  EXPECT_EQ(Get(kW, "k"), "write");
  EXPECT_EQ(Get(ColumnFamily::kMeta, "k"), std::nullopt);
}

TEST_P(EngineConformance, BatchIsAtomicAndOrdered) {
  WriteBatch b;
  b.Put(kD, "x", "1");
  b.Put(kD, "y", "2");
  b.Delete(kD, "x");
  b.Put(kD, "z", "3");
  b.PutOwned(kD, std::string("w"), std::string("44"));  // the strings taken over
  EXPECT_EQ(b.Count(), 5u);
  EXPECT_EQ(b.ByteSize(), (1u + 1) + (1 + 1) + 1 + (1 + 1) + (1 + 2));  // keys and values
  auto snap = engine_->GetSnapshot();
  ASSERT_TRUE(engine_->Write({.sync = true}, b).ok());
  EXPECT_EQ(Get(kD, "x"), std::nullopt);  // later op in the batch wins
  EXPECT_EQ(Get(kD, "y"), "2");
  EXPECT_EQ(Get(kD, "z"), "3");
  EXPECT_EQ(Get(kD, "w"), "44");
  EXPECT_EQ(Get(kD, "y", snap.get()), std::nullopt);  // all or nothing before it
}

TEST_P(EngineConformance, DeleteRange) {
  for (auto k : {"a", "b", "c", "d"}) Put(kD, k, "v");
  WriteBatch b;
  b.DeleteRange(kD, "b", "d");
  ASSERT_TRUE(engine_->Write({}, b).ok());
  EXPECT_EQ(Keys({}, kD), (std::vector<std::string>{"a", "d"}));
}

TEST_P(EngineConformance, IteratorOrderBoundsAndSeeks) {
  for (auto k : {"b", "a", "d", "c", "e"}) Put(kD, k, std::string("v") + k);
  EXPECT_EQ(Keys({}, kD), (std::vector<std::string>{"a", "b", "c", "d", "e"}));
  EXPECT_EQ(Keys({}, kD, true), (std::vector<std::string>{"e", "d", "c", "b", "a"}));
  ReadOptions ro;
  ro.lower_bound = "b";
  ro.upper_bound = "d";
  EXPECT_EQ(Keys(ro, kD), (std::vector<std::string>{"b", "c"}));
  EXPECT_EQ(Keys(ro, kD, true), (std::vector<std::string>{"c", "b"}));
  auto it = engine_->NewIterator({}, kD);
  it->Seek("bb");
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->key(), "c");
  EXPECT_EQ(it->value(), "vc");
  it->SeekForPrev("bb");
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->key(), "b");
  it->Prev();
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->key(), "a");
  it->Prev();
  EXPECT_FALSE(it->Valid());
  it->Seek("z");
  EXPECT_FALSE(it->Valid());
}

// kWrite keys end with 8 bytes of suffix (an MVCC version's ~commit_ts): a prefix_seek
// iterator finds a row's keys as a total-order one does, from memtables and files, and
// a default iterator still sees every key in order.
TEST_P(EngineConformance, PrefixSeekFindsEachRowsKeysWhereverTheyLie) {
  auto key = [](int row, uint8_t version) {
    char r[16];
    std::snprintf(r, sizeof r, "row%04d", row);
    return std::string(r) + std::string(7, '\0') + std::string(1, static_cast<char>(version));
  };
  std::vector<std::string> all;
  for (int row = 0; row < 300; row += 2) {
    for (uint8_t v : {1, 5}) {
      Put(kW, key(row, v), "file");
      all.push_back(key(row, v));
    }
  }
  ASSERT_TRUE(engine_->CompactRange(kW, "", "").ok());  // into files
  for (int row = 0; row < 300; row += 3) {
    Put(kW, key(row, 3), "memtable");
    all.push_back(key(row, 3));
  }
  std::sort(all.begin(), all.end());
  all.erase(std::unique(all.begin(), all.end()), all.end());
  EXPECT_EQ(Keys({}, kW), all);
  ReadOptions po;
  po.prefix_seek = true;
  auto prefixed = engine_->NewIterator(po, kW);
  auto total = engine_->NewIterator({}, kW);
  for (int row = 0; row < 301; ++row) {
    const std::string prefix = key(row, 0).substr(0, 7);
    for (uint8_t from : {0, 2, 4, 9}) {
      // A default Seek lands on the next key in order, whichever row it is in.
      auto next = std::lower_bound(all.begin(), all.end(), key(row, from));
      total->Seek(key(row, from));
      ASSERT_EQ(total->Valid(), next != all.end());
      if (next != all.end()) {
        ASSERT_EQ(total->key(), *next);
      }
      std::vector<std::string> want, got;
      for (total->Seek(key(row, from)); total->Valid() && total->key().substr(0, 7) == prefix;
           total->Next()) {
        want.emplace_back(total->key());
      }
      for (prefixed->Seek(key(row, from));
           prefixed->Valid() && prefixed->key().substr(0, 7) == prefix; prefixed->Next()) {
        got.emplace_back(prefixed->key());
      }
      ASSERT_TRUE(prefixed->status().ok());
      ASSERT_EQ(got, want) << "row " << row << " from " << int(from);
    }
  }
  // The row index: a bound iterator's prefix seeks as well.
  po.lower_bound = key(10, 0).substr(0, 7);
  po.upper_bound = key(20, 0).substr(0, 7);
  auto bounded = engine_->NewIterator(po, kW);
  bounded->Seek(key(12, 0));
  ASSERT_TRUE(bounded->Valid());
  EXPECT_EQ(bounded->key(), key(12, 1));
  bounded->Seek(key(25, 0));
  EXPECT_TRUE(!bounded->Valid() || bounded->key().substr(0, 7) != key(25, 0).substr(0, 7));
}

TEST_P(EngineConformance, SnapshotsAndIteratorsAreStable) {
  Put(kD, "a", "1");
  auto snap = engine_->GetSnapshot();
  auto it = engine_->NewIterator({}, kD);
  Put(kD, "a", "2");
  Put(kD, "b", "2");
  EXPECT_EQ(Get(kD, "a", snap.get()), "1");
  EXPECT_EQ(Get(kD, "b", snap.get()), std::nullopt);
  EXPECT_EQ(Get(kD, "a"), "2");
  // An iterator sees the state at its creation.
  std::vector<std::string> seen;
  for (it->SeekToFirst(); it->Valid(); it->Next())
    seen.emplace_back(std::string(it->key()) + "=" + std::string(it->value()));
  EXPECT_EQ(seen, (std::vector<std::string>{"a=1"}));
  ReadOptions ro;
  ro.snapshot = snap.get();
  EXPECT_EQ(Keys(ro, kD), (std::vector<std::string>{"a"}));
}

TEST_P(EngineConformance, CompactionFilterDropsKeys) {
  Put(kW, "drop/1", "x");
  Put(kW, "keep/1", "y");
  Put(kW, "drop/2", "x");
  ASSERT_TRUE(engine_->CompactRange(kW, "", "").ok());
  EXPECT_EQ(Keys({}, kW), (std::vector<std::string>{"keep/1"}));
  // Column families without a filter keep everything.
  Put(kD, "drop/1", "x");
  ASSERT_TRUE(engine_->CompactRange(kD, "", "").ok());
  EXPECT_EQ(Get(kD, "drop/1"), "x");
}

// A compaction canceled before it starts does nothing and says so; the same call with
// the flag clear runs.
TEST_P(EngineConformance, ACanceledCompactionAnswersCancelledAndDropsNothing) {
  Put(kW, "drop/1", "x");
  Put(kW, "keep/1", "y");
  std::atomic<bool> cancel{true};
  Status s = engine_->CompactRange(kW, "", "", &cancel);
  EXPECT_EQ(s.code(), StatusCode::kCancelled) << s.ToString();
  EXPECT_EQ(Keys({}, kW), (std::vector<std::string>{"drop/1", "keep/1"}));
  cancel = false;
  s = engine_->CompactRange(kW, "", "", &cancel);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(Keys({}, kW), (std::vector<std::string>{"keep/1"}));
}

TEST_P(EngineConformance, ApproximateSizeCountsTheRange) {
  const std::string value(1024, 'v');
  for (int i = 0; i < 512; ++i) {
    char k[16];
    std::snprintf(k, sizeof(k), "m/%05d", i);
    Put(kW, k, value);
  }
  auto all = engine_->ApproximateSize(kW, "m/", "m0");
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  // An estimate: at least a quarter of the half-megabyte written, at most four times.
  EXPECT_GE(*all, 512u * 1024 / 4);
  EXPECT_LE(*all, 512u * 1024 * 4);
  auto unbounded = engine_->ApproximateSize(kW, "", "");
  ASSERT_TRUE(unbounded.ok());
  EXPECT_GE(*unbounded, *all / 2);
  auto none = engine_->ApproximateSize(kW, "x/", "y/");
  ASSERT_TRUE(none.ok());
  EXPECT_LT(*none, *all / 8);
}

TEST_P(EngineConformance, MatchesAModelUnderRandomOperations) {
  std::mt19937 rng(20261125);
  std::map<std::string, std::string> model;
  auto key = [&] { return "k" + std::to_string(rng() % 64); };
  for (int round = 0; round < 200; ++round) {
    WriteBatch b;
    int n = 1 + rng() % 5;
    for (int i = 0; i < n; ++i) {
      auto k = key();
      switch (rng() % 4) {
        case 0:
        case 1: {
          auto v = std::to_string(rng());
          b.Put(kD, k, v);
          model[k] = v;
          break;
        }
        case 2:
          b.Delete(kD, k);
          model.erase(k);
          break;
        case 3: {
          auto k2 = key();
          if (k2 < k) std::swap(k, k2);
          b.DeleteRange(kD, k, k2);
          model.erase(model.lower_bound(k), model.lower_bound(k2));
          break;
        }
      }
    }
    ASSERT_TRUE(engine_->Write({.sync = false}, b).ok());
    std::vector<std::string> want;
    for (auto& [k, v] : model) want.push_back(k);
    ASSERT_EQ(Keys({}, kD), want) << "round " << round;
  }
  for (auto& [k, v] : model) EXPECT_EQ(Get(kD, k), v);
}

TEST_P(EngineConformance, ReopenKeepsWhatTheEnginePromises) {
  Put(kD, "durable", "yes");
  Put(ColumnFamily::kMeta, "m", "1");
  Reopen();
  if (GetParam() == "memory") {  // ephemeral by design: a new engine starts empty
    EXPECT_EQ(Get(kD, "durable"), std::nullopt);
    return;
  }
  EXPECT_EQ(Get(kD, "durable"), "yes");
  EXPECT_EQ(Get(ColumnFamily::kMeta, "m"), "1");
}

INSTANTIATE_TEST_SUITE_P(AllEngines, EngineConformance, ::testing::Values("memory", "rocksdb"),
                         [](const auto& info) { return info.param; });

TEST(EngineFactory, RejectsUnknownKind) {
  EngineOptions o;
  o.kind = "floppy";
  auto r = OpenEngine(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
}

// The RocksDB adapter's per-family compression, as RocksDB recorded it in its OPTIONS
// file: the Raft log's entries (deleted once their log is truncated) are stored as they
// are; rows are compressed, LZ4 above the bottom level and ZSTD at it.
TEST(RocksDbEngine, CompressesRowsButNotTheRaftLog) {
  const fs::path dir =
      fs::temp_directory_path() / ("gojodb-engine-options-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  EngineOptions o;
  o.kind = "rocksdb";
  o.path = dir.string();
  ASSERT_TRUE(OpenEngine(o).ok());  // opened and closed
  int files = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().filename().string().rfind("OPTIONS-", 0) != 0) continue;
    ++files;
    SCOPED_TRACE(entry.path().string());
    std::map<std::string, std::map<std::string, std::string>> families;  // option by name
    std::ifstream in(entry.path());
    std::string line, family;
    while (std::getline(in, line)) {
      if (line.rfind("[CFOptions \"", 0) == 0) {
        family = line.substr(12, line.find('"', 12) - 12);
      } else if (line.rfind("[", 0) == 0) {
        family.clear();
      } else if (!family.empty() && line.find('=') != std::string::npos) {
        const size_t b = line.find_first_not_of(' '), eq = line.find('=');
        families[family][line.substr(b, eq - b)] = line.substr(eq + 1);
      }
    }
    ASSERT_TRUE(families.count("raft") && families.count("write"));
    EXPECT_EQ(families["raft"]["compression"], "kNoCompression");
    EXPECT_EQ(families["raft"]["bottommost_compression"], "kNoCompression");
    EXPECT_EQ(families["write"]["compression"], "kLZ4Compression");
    EXPECT_EQ(families["write"]["bottommost_compression"], "kZSTD");
  }
  EXPECT_GT(files, 0) << "RocksDB wrote no OPTIONS file in " << dir;
  fs::remove_all(dir);
}

}  // namespace
}  // namespace gojodb::storage
