#include "core/kv/kv_store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

namespace gojodb::kv {
namespace {

class KvStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    safe_point_ = std::make_shared<mvcc::SafePoint>();
    storage::EngineOptions eo;
    eo.kind = "memory";
    eo.filters[mvcc::kVersionCf] = mvcc::NewVersionGcFilterFactory(safe_point_);
    engine_ = std::move(storage::OpenEngine(eo)).value();
    tso_ = std::move(mvcc::LocalTimestampOracle::Open(engine_.get(), &clock_)).value();
    KvStoreOptions o;
    o.limits.max_value_bytes = 1024;
    o.limits.max_key_bytes = 16;
    o.gc_ttl_ms = 1000;
    o.request_id_ttl_ms = 5000;
    o.maintenance_interval_ms = 3600 * 1000;
    store_ = std::move(KvStore::Open(engine_.get(), tso_.get(), &clock_, safe_point_, o)).value();
  }

  WriteResult MustPut(std::string k, std::string v, std::string c = "") {
    auto r = store_->Put({.collection = c, .key = k, .value = v});
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : WriteResult{};
  }
  std::optional<std::string> MustGet(std::string k, std::string c = "") {
    auto r = store_->Get({.collection = c, .key = k});
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok() || !r->found) return std::nullopt;
    return r->value;
  }

  ManualClock clock_{1'700'000'000'000};
  std::shared_ptr<mvcc::SafePoint> safe_point_;
  std::unique_ptr<storage::Engine> engine_;
  std::unique_ptr<mvcc::LocalTimestampOracle> tso_;
  std::unique_ptr<KvStore> store_;
};

TEST_F(KvStoreTest, PutGetDeleteRoundTrip) {
  auto w1 = MustPut("k", "v1");
  EXPECT_EQ(MustGet("k"), "v1");
  auto w2 = MustPut("k", "v2");
  EXPECT_GT(w2.version, w1.version);
  auto g = store_->Get({.key = "k"});
  EXPECT_EQ(g->version, w2.version);
  auto d = store_->Delete({.key = "k"});
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d->existed);
  EXPECT_EQ(MustGet("k"), std::nullopt);
  EXPECT_FALSE(store_->Delete({.key = "k"})->existed);
}

TEST_F(KvStoreTest, ValidatesKeysValuesAndCollections) {
  auto empty = store_->Put({.key = "", .value = "v"});
  EXPECT_EQ(empty.status().code(), StatusCode::kInvalidArgument);
  auto long_key = store_->Put({.key = std::string(17, 'k'), .value = "v"});
  EXPECT_EQ(long_key.status().code(), StatusCode::kResourceExhausted);
  auto big = store_->Put({.key = "k", .value = std::string(1025, 'v')});
  EXPECT_EQ(big.status().code(), StatusCode::kResourceExhausted);
  ASSERT_EQ(big.status().details().size(), 1u);
  EXPECT_EQ(big.status().details()[0].second, "TOO_LARGE");
  EXPECT_TRUE(store_->Put({.key = "k", .value = std::string(1024, 'v')}).ok());  // at the limit
  auto unknown = store_->Put({.collection = "nope", .key = "k", .value = "v"});
  EXPECT_EQ(unknown.status().code(), StatusCode::kNotFound);
  auto bad_name = store_->Get({.collection = "bad/name", .key = "k"});
  EXPECT_EQ(bad_name.status().code(), StatusCode::kInvalidArgument);
}

TEST_F(KvStoreTest, ConditionalWrites) {
  auto created = store_->Put({.key = "k", .value = "a", .if_version = 0});
  ASSERT_TRUE(created.ok());
  auto again = store_->Put({.key = "k", .value = "b", .if_version = 0});
  ASSERT_EQ(again.status().code(), StatusCode::kFailedPrecondition);
  ASSERT_EQ(again.status().details().size(), 1u);
  EXPECT_EQ(again.status().details()[0].first, "current_version");
  EXPECT_EQ(again.status().details()[0].second, std::to_string(created->version));
  auto swapped = store_->Put({.key = "k", .value = "c", .if_version = created->version});
  ASSERT_TRUE(swapped.ok());
  EXPECT_EQ(MustGet("k"), "c");
  auto stale_delete = store_->Delete({.key = "k", .if_version = created->version});
  EXPECT_EQ(stale_delete.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(store_->Delete({.key = "k", .if_version = swapped->version}).ok());
  // After a delete the key counts as absent again.
  EXPECT_TRUE(store_->Put({.key = "k", .value = "d", .if_version = 0}).ok());
}

TEST_F(KvStoreTest, ConcurrentCompareAndSetLosesNoUpdate) {
  MustPut("counter", "0");
  std::atomic<int> applied{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        while (true) {
          auto cur = store_->Get({.key = "counter"});
          int n = std::stoi(cur->value);
          auto w = store_->Put(
              {.key = "counter", .value = std::to_string(n + 1), .if_version = cur->version});
          if (w.ok()) {
            ++applied;
            break;
          }
          ASSERT_EQ(w.status().code(), StatusCode::kFailedPrecondition);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(applied.load(), 200);
  EXPECT_EQ(MustGet("counter"), "200");
}

TEST_F(KvStoreTest, BlindWritersAndCompareAndSetWritersTogetherLoseNoIncrement) {
  // Blind writers (shared latches) hammer one row while CAS writers (exclusive latches)
  // increment another: no increment is lost, nothing deadlocks, and the hot row's visible
  // version is its newest.
  MustPut("counter", "0");
  std::atomic<bool> stop{false};
  std::atomic<int> blind_writes{0};
  std::vector<std::thread> blind;
  for (int t = 0; t < 3; ++t) {
    blind.emplace_back([&, t] {
      for (int i = 0; !stop; ++i) {
        ASSERT_TRUE(store_->Put({.key = "hot", .value = std::to_string(t * 100000 + i)}).ok());
        ++blind_writes;
      }
    });
  }
  std::vector<std::thread> cas;
  for (int t = 0; t < 3; ++t) {
    cas.emplace_back([&] {
      for (int i = 0; i < 100; ++i) {
        while (true) {
          auto cur = store_->Get({.key = "counter"});
          auto w = store_->Put({.key = "counter",
                                .value = std::to_string(std::stoi(cur->value) + 1),
                                .if_version = cur->version});
          if (w.ok()) break;
          ASSERT_EQ(w.status().code(), StatusCode::kFailedPrecondition);
        }
      }
    });
  }
  for (auto& th : cas) th.join();
  // The CAS writers can finish before a blind writer has started: the blind ones stop
  // only after some writes of theirs (they overlap the CAS writers on most machines).
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (blind_writes.load() < 300 && std::chrono::steady_clock::now() < until) {
    std::this_thread::yield();
  }
  EXPECT_GE(blind_writes.load(), 300);
  stop = true;
  for (auto& th : blind) th.join();
  EXPECT_EQ(MustGet("counter"), "300");
  auto hot = store_->Get({.key = "hot"});
  ASSERT_TRUE(hot->found);
  // The visible version is the newest one: nothing newer exists.
  auto scan = store_->Scan({.prefix = "hot"});
  ASSERT_EQ(scan->items.size(), 1u);
  EXPECT_EQ(scan->items[0].version, hot->version);
}

TEST_F(KvStoreTest, RequestIdsMakeRetriesApplyOnce) {
  auto first = store_->Put({.key = "k", .value = "v", .if_version = 0, .request_id = "r1"});
  ASSERT_TRUE(first.ok());
  // The retry would fail its condition if it ran again; instead it answers as before.
  auto retry = store_->Put({.key = "k", .value = "v", .if_version = 0, .request_id = "r1"});
  ASSERT_TRUE(retry.ok()) << retry.status().ToString();
  EXPECT_EQ(retry->version, first->version);
  auto misuse = store_->Put({.key = "other", .value = "v", .request_id = "r1"});
  EXPECT_EQ(misuse.status().code(), StatusCode::kInvalidArgument);
  // Expired ids are forgotten.
  clock_.Advance(6000);
  ASSERT_TRUE(store_->RunMaintenance().ok());
  auto later = store_->Put({.key = "k", .value = "v", .if_version = 0, .request_id = "r1"});
  EXPECT_EQ(later.status().code(), StatusCode::kFailedPrecondition);
}

TEST_F(KvStoreTest, BatchIsAllOrNothing) {
  MustPut("a", "1");
  auto v = store_->Get({.key = "a"})->version;
  auto failed =
      store_->Batch({.ops = {{.kind = BatchOp::Kind::kPut, .key = "b", .value = "2"},
                             {.kind = BatchOp::Kind::kDelete, .key = "a", .if_version = v + 1}}});
  ASSERT_EQ(failed.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(failed.status().message().find("ops[1]"), std::string::npos);
  EXPECT_EQ(MustGet("b"), std::nullopt);
  auto ok = store_->Batch({.ops = {{.kind = BatchOp::Kind::kPut, .key = "b", .value = "2"},
                                   {.kind = BatchOp::Kind::kDelete, .key = "a", .if_version = v}}});
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(MustGet("b"), "2");
  EXPECT_EQ(MustGet("a"), std::nullopt);
  EXPECT_EQ(store_->Get({.key = "b"})->version, ok->version);
  EXPECT_EQ(store_->Batch({}).status().code(), StatusCode::kInvalidArgument);
  auto bad = store_->Batch(
      {.ops = {{.kind = BatchOp::Kind::kPut, .collection = "missing", .key = "x", .value = "1"}}});
  EXPECT_EQ(bad.status().code(), StatusCode::kNotFound);
}

TEST_F(KvStoreTest, ScanPrefixLimitAndSnapshot) {
  for (auto k : {"user/1", "user/2", "user/3", "vip/1"}) MustPut(k, k);
  auto s = store_->Scan({.prefix = "user/", .limit = 2});
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(s->items.size(), 2u);
  EXPECT_EQ(s->items[1].key, "user/2");
  ASSERT_TRUE(s->next.has_value());
  EXPECT_EQ(*s->next, "user/3");
  const uint64_t snapshot = s->read_ts;
  MustPut("user/4", "new");
  auto rest = store_->Scan({.start = *s->next, .prefix = "user/"});
  ASSERT_EQ(rest->items.size(), 2u);
  EXPECT_FALSE(rest->next.has_value());
  auto old =
      store_->Scan({.prefix = "user/", .consistency = Consistency::kSnapshot, .at = snapshot});
  ASSERT_TRUE(old.ok());
  EXPECT_EQ(old->items.size(), 3u);  // user/4 came later
  auto rev = store_->Scan({.reverse = true});
  EXPECT_EQ(rev->items.front().key, "vip/1");
  EXPECT_EQ(store_->Scan({.limit = 10001}).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(KvStoreTest, SnapshotReadsBelowTheSafePointAreRefused) {
  auto w = MustPut("k", "old");
  MustPut("k", "new");
  auto g = store_->Get({.key = "k", .consistency = Consistency::kSnapshot, .at = w.version});
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->value, "old");
  clock_.Advance(10'000);
  ASSERT_TRUE(store_->RunMaintenance().ok());
  auto too_old = store_->Get({.key = "k", .consistency = Consistency::kSnapshot, .at = w.version});
  EXPECT_EQ(too_old.status().code(), StatusCode::kOutOfRange);
  ASSERT_TRUE(engine_->CompactRange(mvcc::kVersionCf, "", "").ok());
  EXPECT_EQ(MustGet("k"), "new");
}

TEST_F(KvStoreTest, SnapshotsInTheFarFutureAreRefused) {
  MustPut("k", "v");
  const uint64_t far = mvcc::ComposeTimestamp(clock_.NowMillis() + 3'600'000, 0);
  auto g = store_->Get({.key = "k", .consistency = Consistency::kSnapshot, .at = far});
  EXPECT_EQ(g.status().code(), StatusCode::kInvalidArgument);
  EXPECT_LT(tso_->Last(), far);  // the oracle did not move
  const uint64_t near = mvcc::ComposeTimestamp(clock_.NowMillis() + 1000, 0);
  auto ok = store_->Get({.key = "k", .consistency = Consistency::kSnapshot, .at = near});
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->value, "v");
  EXPECT_GT(MustPut("k", "w").version, near);  // later writes land after the snapshot
}

TEST_F(KvStoreTest, CollectionsLifecycle) {
  auto list = store_->ListCollections();
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].name, "default");
  auto c = store_->CreateCollection({.name = "users"});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(store_->CreateCollection({.name = "users"}).status().code(),
            StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->CreateCollection({.name = "-bad"}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(
      store_->CreateCollection({.name = "x", .indexes = {{"i", {"a"}, false}}}).status().code(),
      StatusCode::kUnimplemented);
  MustPut("k", "in-users", "users");
  MustPut("k", "in-default");
  EXPECT_EQ(MustGet("k", "users"), "in-users");
  ASSERT_TRUE(store_->DropCollection("users").ok());
  EXPECT_EQ(store_->Get({.collection = "users", .key = "k"}).status().code(),
            StatusCode::kNotFound);
  ASSERT_TRUE(store_->CreateCollection({.name = "users"}).ok());
  EXPECT_EQ(MustGet("k", "users"), std::nullopt);  // a new id: old rows do not reappear
  EXPECT_EQ(MustGet("k"), "in-default");
  EXPECT_EQ(store_->DropCollection("default").code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->DropCollection("ghost").code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace gojodb::kv
