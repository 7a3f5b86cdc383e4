#include "core/txn/percolator.h"

#include <gtest/gtest.h>

#include <map>
#include <random>

#include "core/mvcc/timestamp_oracle.h"

namespace gojodb::txn {
namespace {

using mvcc::ComposeTimestamp;

std::unique_ptr<storage::Engine> MemoryEngine() {
  storage::EngineOptions o;
  o.kind = "memory";
  return std::move(storage::OpenEngine(o)).value();
}

std::string Row(std::string_view k) { return mvcc::EncodeRowKey(1, 1, k); }

// Timestamps at physical millisecond `ms`.
Timestamp Ts(uint64_t ms, uint64_t logical = 0) { return ComposeTimestamp(ms, logical); }

// One shard's rows: runs a command and writes its batch, as the shard's state machine does.
class Shard {
 public:
  Shard() : engine_(MemoryEngine()), rows_(engine_.get()) {}

  template <typename F>
  TxnOutcome Run(F&& command) {
    storage::WriteBatch batch;
    Result<TxnOutcome> o = command(rows_, &batch);
    EXPECT_TRUE(o.ok()) << o.status().ToString();
    if (!o.ok()) return Refused();
    if (o->ok()) {
      EXPECT_TRUE(engine_->Write({}, batch).ok());
    } else {
      EXPECT_EQ(batch.Count(), 0u) << "a refused command staged writes";
    }
    return *o;
  }
  TxnOutcome Prewrite(Timestamp start, std::string_view primary, std::vector<TxnMutation> ms,
                      uint64_t ttl_ms = 3000, Timestamp max_ts = 0) {
    PrewriteRequest r;
    r.start_ts = start;
    r.primary = Row(primary);
    r.ttl_ms = ttl_ms;
    r.mutations = std::move(ms);
    return Run([&](TxnRows& t, storage::WriteBatch* b) { return t.Prewrite(r, max_ts, b); });
  }
  TxnOutcome Commit(Timestamp start, Timestamp commit, std::vector<std::string> keys,
                    bool primary = false) {
    auto rows = RowsOf(keys);
    return Run([&](TxnRows& t, storage::WriteBatch* b) {
      return t.Commit(start, commit, rows, primary, b);
    });
  }
  TxnOutcome Rollback(Timestamp start, std::vector<std::string> keys) {
    auto rows = RowsOf(keys);
    return Run([&](TxnRows& t, storage::WriteBatch* b) { return t.Rollback(start, rows, b); });
  }
  TxnOutcome Check(std::string_view primary, Timestamp start, Timestamp now, Timestamp caller = 0,
                   bool rollback_if_missing = false) {
    CheckStatusRequest r;
    r.primary = Row(primary);
    r.start_ts = start;
    r.current_ts = now;
    r.caller_ts = caller;
    r.rollback_if_missing = rollback_if_missing;
    return Run([&](TxnRows& t, storage::WriteBatch* b) { return t.CheckTxnStatus(r, b); });
  }
  void PutPlain(std::string_view k, Timestamp ts, std::string_view v) {
    storage::WriteBatch b;
    mvcc::PutVersion(&b, Row(k), ts, v);
    ASSERT_TRUE(engine_->Write({}, b).ok());
  }
  // The committed value at ts, ignoring locks ("" when absent).
  std::string ValueAt(std::string_view k, Timestamp ts) {
    mvcc::MvccReader r(engine_.get(), nullptr);
    auto v = r.Get(Row(k), ts);
    EXPECT_TRUE(v.ok());
    if (!v.ok() || !*v || (*v)->deleted) return "";
    return (*v)->value;
  }
  std::optional<Lock> LockOn(std::string_view k) {
    auto l = rows_.LockOf(Row(k));
    EXPECT_TRUE(l.ok());
    return l.ok() ? *l : std::nullopt;
  }
  std::optional<Lock> Blocker(std::string_view k, ReadLockRules rules) {
    auto l = rows_.ReadBlocker(Row(k), rules);
    EXPECT_TRUE(l.ok());
    return l.ok() ? *l : std::nullopt;
  }
  size_t LockRecords() {
    auto it = engine_->NewIterator({}, kLockCf);
    size_t n = 0;
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      if (DecodeLock(it->value()).ok()) ++n;
    }
    return n;
  }
  TxnRows& rows() { return rows_; }

 private:
  static std::vector<std::string> RowsOf(const std::vector<std::string>& keys) {
    std::vector<std::string> rows;
    for (auto& k : keys) rows.push_back(Row(k));
    return rows;
  }
  static TxnOutcome Refused() {
    TxnOutcome o;
    o.error = TxnError::kInvalid;
    return o;
  }
  std::unique_ptr<storage::Engine> engine_;
  TxnRows rows_;
};

TxnMutation Put(std::string_view k, std::string_view v) {
  return TxnMutation{LockKind::kPut, Row(k), std::string(v), std::nullopt};
}
TxnMutation Del(std::string_view k) {
  return TxnMutation{LockKind::kDelete, Row(k), "", std::nullopt};
}

TEST(LockRecord, RoundTripsAndRefusesMalformedInput) {
  Lock l;
  l.start_ts = Ts(5, 3);
  l.primary = Row("p");
  l.ttl_ms = 1234;
  l.min_commit_ts = Ts(6);
  l.kind = LockKind::kPut;
  l.value = std::string("v\0w", 3);
  auto d = DecodeLock(EncodeLock(l));
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->start_ts, l.start_ts);
  EXPECT_EQ(d->primary, l.primary);
  EXPECT_EQ(d->ttl_ms, l.ttl_ms);
  EXPECT_EQ(d->min_commit_ts, l.min_commit_ts);
  EXPECT_EQ(d->kind, l.kind);
  EXPECT_EQ(d->value, l.value);

  const std::string good = EncodeLock(l);
  // Every truncation short of the fixed part, a bad tag or kind, a primary longer than
  // the record, a delete with a value: all DATA_LOSS, none a crash.
  for (size_t n = 0; n < 30 + l.primary.size(); ++n) {
    EXPECT_FALSE(DecodeLock(good.substr(0, n)).ok()) << n;
  }
  std::string bad = good;
  bad[0] = 'X';
  EXPECT_FALSE(DecodeLock(bad).ok());
  bad = good;
  bad[1] = 'Q';
  EXPECT_FALSE(DecodeLock(bad).ok());
  bad = good;
  bad[26] = '\xff';
  EXPECT_FALSE(DecodeLock(bad).ok());
  Lock del = l;
  del.kind = LockKind::kDelete;
  bad = EncodeLock(del);  // encodes the value too: a delete must not carry one
  EXPECT_EQ(DecodeLock(bad).status().code(), StatusCode::kDataLoss);
  std::mt19937_64 rng(7);
  for (int i = 0; i < 2000; ++i) {
    std::string s = good;
    s[rng() % s.size()] = static_cast<char>(rng());
    (void)DecodeLock(s);  // must not crash (run under the sanitizers too)
  }
}

TEST(TxnVersions, CommittedRecordsReadAsVersionsAndNameTheirStart) {
  auto engine = MemoryEngine();
  storage::WriteBatch b;
  mvcc::PutVersion(&b, Row("k"), Ts(10), "plain");
  mvcc::PutCommitted(&b, Row("k"), Ts(30), Ts(20), "txn");
  mvcc::DeleteCommitted(&b, Row("k"), Ts(50), Ts(40));
  ASSERT_TRUE(engine->Write({}, b).ok());
  mvcc::MvccReader r(engine.get(), nullptr);
  auto v = r.Get(Row("k"), Ts(35));
  ASSERT_TRUE(v.ok() && *v);
  EXPECT_EQ((*v)->value, "txn");
  EXPECT_EQ((*v)->version, Ts(30));
  EXPECT_EQ((*v)->start_ts, Ts(20));
  v = r.Get(Row("k"), Ts(15));
  ASSERT_TRUE(v.ok() && *v);
  EXPECT_EQ((*v)->start_ts, Ts(10));  // a plain write starts where it commits
  v = r.Get(Row("k"), Ts(60));
  ASSERT_TRUE(v.ok() && *v);
  EXPECT_TRUE((*v)->deleted);
  EXPECT_EQ((*v)->start_ts, Ts(40));

  EXPECT_EQ(*r.FindCommit(Row("k"), Ts(20)), Ts(30));
  EXPECT_EQ(*r.FindCommit(Row("k"), Ts(40)), Ts(50));
  EXPECT_EQ(*r.FindCommit(Row("k"), Ts(25)), std::nullopt);
  EXPECT_EQ(*r.FindCommit(Row("other"), Ts(20)), std::nullopt);

  EXPECT_FALSE(mvcc::DecodeVersion(Ts(5), "p\x01").ok());  // short
  EXPECT_FALSE(mvcc::DecodeVersion(Ts(5), std::string("d\0\0\0\0\0\0\0\0x", 10)).ok());
  std::string starts_later = "p";
  mvcc::AppendUint64(&starts_later, Ts(9));
  EXPECT_FALSE(mvcc::DecodeVersion(Ts(5), starts_later).ok());
  EXPECT_FALSE(mvcc::DecodeVersion(Ts(5), "").ok());
}

TEST(Percolator, CommitMakesEveryRowVisibleAtTheCommitTimestampOnly) {
  Shard s;
  s.PutPlain("a", Ts(1), "a0");
  auto pw = s.Prewrite(Ts(10), "a", {Put("a", "a1"), Put("b", "b1"), Del("c")});
  ASSERT_TRUE(pw.ok()) << pw.message;
  EXPECT_EQ(pw.min_commit_ts, Ts(10) + 1);
  EXPECT_EQ(s.LockRecords(), 3u);
  // Prewritten values are not versions: reads below and above see the old state, and a
  // read at or above start_ts must resolve the lock first.
  EXPECT_EQ(s.ValueAt("a", Ts(20)), "a0");
  EXPECT_FALSE(s.Blocker("a", {Ts(9), {}, false}));
  EXPECT_TRUE(s.Blocker("b", {Ts(10), {}, false}));

  ASSERT_TRUE(s.Commit(Ts(10), Ts(12), {"a"}, /*primary=*/true).ok());
  ASSERT_TRUE(s.Commit(Ts(10), Ts(12), {"b", "c"}).ok());
  EXPECT_EQ(s.LockRecords(), 0u);
  EXPECT_EQ(s.ValueAt("a", Ts(11)), "a0");
  EXPECT_EQ(s.ValueAt("a", Ts(12)), "a1");
  EXPECT_EQ(s.ValueAt("b", Ts(12)), "b1");
  EXPECT_EQ(s.ValueAt("b", Ts(11)), "");
  EXPECT_EQ(s.ValueAt("c", Ts(12)), "");
  // Idempotent: a retried commit changes nothing and succeeds; a different timestamp
  // for the same transaction is refused.
  EXPECT_TRUE(s.Commit(Ts(10), Ts(12), {"a", "b"}, true).ok());
  EXPECT_EQ(s.Commit(Ts(10), Ts(13), {"a"}).error, TxnError::kInvalid);
  EXPECT_EQ(s.Commit(Ts(10), Ts(10), {"a"}).error, TxnError::kInvalid);
}

TEST(Percolator, APrewriteIsAllOrNothing) {
  Shard s;
  ASSERT_TRUE(s.Prewrite(Ts(10), "x", {Put("x", "1")}).ok());
  // The second row is locked by another transaction: nothing of this prewrite lands.
  auto o = s.Prewrite(Ts(11), "a", {Put("a", "1"), Put("x", "2"), Put("z", "3")});
  EXPECT_EQ(o.error, TxnError::kLocked);
  EXPECT_EQ(o.row_key, Row("x"));
  ASSERT_TRUE(o.lock);
  EXPECT_EQ(o.lock->start_ts, Ts(10));
  EXPECT_EQ(o.lock->primary, Row("x"));
  EXPECT_FALSE(s.LockOn("a"));
  EXPECT_FALSE(s.LockOn("z"));
  EXPECT_EQ(o.ToStatus().code(), StatusCode::kAborted);
  // The status carries the row and the lock (without its value) for the resolver.
  auto back = LockedFrom(o.ToStatus());
  ASSERT_TRUE(back);
  EXPECT_EQ(back->row_key, Row("x"));
  EXPECT_EQ(back->lock.start_ts, Ts(10));
  EXPECT_EQ(back->lock.primary, Row("x"));
  EXPECT_TRUE(back->lock.value.empty());
  EXPECT_FALSE(LockedFrom(Status::Aborted("write conflict")));

  // A prewrite retry of the same transaction is a no-op success.
  EXPECT_TRUE(s.Prewrite(Ts(10), "x", {Put("x", "1")}).ok());
  EXPECT_EQ(s.LockRecords(), 1u);
  // Malformed requests.
  EXPECT_EQ(s.Prewrite(Ts(12), "a", {Put("a", "1"), Put("a", "2")}).error, TxnError::kInvalid);
  EXPECT_EQ(s.Prewrite(Ts(12), "a", {}).error, TxnError::kInvalid);
  EXPECT_EQ(s.Prewrite(0, "a", {Put("a", "1")}).error, TxnError::kInvalid);
  TxnMutation d = Del("a");
  d.value = "x";
  EXPECT_EQ(s.Prewrite(Ts(12), "a", {d}).error, TxnError::kInvalid);
}

TEST(Percolator, FirstCommitterWins) {
  Shard s;
  s.PutPlain("k", Ts(15), "by a plain write");
  // Started before that write: conflict, naming it.
  auto o = s.Prewrite(Ts(10), "k", {Put("k", "late")});
  EXPECT_EQ(o.error, TxnError::kWriteConflict);
  EXPECT_EQ(o.conflict_ts, Ts(15));
  auto st = o.ToStatus();
  EXPECT_EQ(st.code(), StatusCode::kAborted);
  ASSERT_FALSE(st.details().empty());
  EXPECT_EQ(st.details()[0], (std::pair<std::string, std::string>{"reason", "WRITE_CONFLICT"}));
  // Started after it: fine; a transaction that commits first makes an older one conflict.
  ASSERT_TRUE(s.Prewrite(Ts(20), "k", {Put("k", "t20")}).ok());
  ASSERT_TRUE(s.Commit(Ts(20), Ts(22), {"k"}, true).ok());
  o = s.Prewrite(Ts(21), "k", {Put("k", "t21")});
  EXPECT_EQ(o.error, TxnError::kWriteConflict);
  EXPECT_EQ(o.conflict_ts, Ts(22));
  // The version at exactly start_ts was visible to the transaction: no conflict.
  EXPECT_TRUE(s.Prewrite(Ts(22) + 0, "k", {Put("k", "t22")}).error == TxnError::kNone);
}

TEST(Percolator, ConditionsAreCheckedAgainstTheNewestVersion) {
  Shard s;
  s.PutPlain("k", Ts(5), "v");
  TxnMutation m = Put("k", "new");
  m.if_version = Ts(4);
  auto o = s.Prewrite(Ts(10), "k", {m});
  EXPECT_EQ(o.error, TxnError::kConditionFailed);
  EXPECT_EQ(o.conflict_ts, Ts(5));
  EXPECT_EQ(o.ToStatus().code(), StatusCode::kFailedPrecondition);
  m.if_version = 0;  // must not exist
  EXPECT_EQ(s.Prewrite(Ts(10), "k", {m}).error, TxnError::kConditionFailed);
  TxnMutation absent = Put("new-row", "x");
  absent.if_version = 0;
  m.if_version = Ts(5);
  EXPECT_TRUE(s.Prewrite(Ts(10), "k", {m, absent}).ok());
}

TEST(Percolator, RollbackIsFinalAndRefusedAfterACommit) {
  Shard s;
  ASSERT_TRUE(s.Prewrite(Ts(10), "a", {Put("a", "1"), Put("b", "2")}).ok());
  ASSERT_TRUE(s.Rollback(Ts(10), {"a", "b"}).ok());
  EXPECT_EQ(s.LockRecords(), 0u);
  EXPECT_TRUE(s.Rollback(Ts(10), {"a", "b"}).ok());  // idempotent
  // A prewrite that arrives late (a retry, a slow network) cannot bring it back.
  EXPECT_EQ(s.Prewrite(Ts(10), "a", {Put("a", "1")}).error, TxnError::kRolledBack);
  EXPECT_EQ(s.Commit(Ts(10), Ts(12), {"a"}, true).error, TxnError::kRolledBack);
  EXPECT_EQ(s.ValueAt("a", Ts(100)), "");

  // A row never prewritten can be rolled back too (the marker refuses its prewrite).
  ASSERT_TRUE(s.Rollback(Ts(20), {"c"}).ok());
  EXPECT_EQ(s.Prewrite(Ts(20), "c", {Put("c", "1")}).error, TxnError::kRolledBack);

  ASSERT_TRUE(s.Prewrite(Ts(30), "d", {Put("d", "1")}).ok());
  ASSERT_TRUE(s.Commit(Ts(30), Ts(31), {"d"}, true).ok());
  auto o = s.Rollback(Ts(30), {"e", "d"});
  EXPECT_EQ(o.error, TxnError::kCommitted);
  EXPECT_EQ(o.commit_ts, Ts(31));
  EXPECT_EQ(s.ValueAt("d", Ts(31)), "1");
  // Committing rows that hold nothing of the transaction is refused.
  EXPECT_EQ(s.Commit(Ts(40), Ts(41), {"zzz"}).error, TxnError::kLockNotFound);
}

TEST(Percolator, CheckTxnStatusDecidesFromThePrimary) {
  Shard s;
  const Timestamp start = Ts(1000);
  ASSERT_TRUE(s.Prewrite(start, "p", {Put("p", "1"), Put("q", "2")}, /*ttl_ms=*/100).ok());

  // Alive: locked, and a reader at 1050 pushes the commit above its read.
  auto o = s.Check("p", start, Ts(1050), /*caller=*/Ts(1050, 7));
  EXPECT_EQ(o.state, TxnState::kLocked);
  EXPECT_EQ(o.min_commit_ts, Ts(1050, 7) + 1);
  EXPECT_EQ(s.LockOn("p")->min_commit_ts, Ts(1050, 7) + 1);
  // A lower or latest-read caller never lowers it.
  EXPECT_EQ(s.Check("p", start, Ts(1050), Ts(1001)).min_commit_ts, Ts(1050, 7) + 1);
  EXPECT_EQ(s.Check("p", start, Ts(1050), mvcc::kMaxTimestamp).min_commit_ts, Ts(1050, 7) + 1);
  // The coordinator's commit below the push is refused, with nothing changed...
  auto c = s.Commit(start, Ts(1040), {"p"}, /*primary=*/true);
  EXPECT_EQ(c.error, TxnError::kCommitTsTooLow);
  EXPECT_EQ(c.min_commit_ts, Ts(1050, 7) + 1);
  EXPECT_TRUE(s.LockOn("p"));
  // ...and one above it commits.
  ASSERT_TRUE(s.Commit(start, Ts(1060), {"p"}, true).ok());
  o = s.Check("p", start, Ts(5000));
  EXPECT_EQ(o.state, TxnState::kCommitted);
  EXPECT_EQ(o.commit_ts, Ts(1060));
  // A secondary is rolled forward at the primary's timestamp, even below its own
  // min_commit_ts (only the primary's decides).
  ASSERT_TRUE(s.Commit(start, o.commit_ts, {"q"}).ok());
  EXPECT_EQ(s.ValueAt("q", Ts(1060)), "2");

  // Expired: rolled back by the checker.
  const Timestamp t2 = Ts(2000);
  ASSERT_TRUE(s.Prewrite(t2, "r", {Put("r", "1")}, 100).ok());
  EXPECT_EQ(s.Check("r", t2, Ts(2099, 5)).state, TxnState::kLocked);
  EXPECT_EQ(s.Check("r", t2, Ts(2100)).state, TxnState::kRolledBack);
  EXPECT_FALSE(s.LockOn("r"));
  EXPECT_EQ(s.Commit(t2, Ts(2101), {"r"}, true).error, TxnError::kRolledBack);
  EXPECT_EQ(s.Check("r", t2, Ts(2200)).state, TxnState::kRolledBack);

  // Never prewritten: not found, unless asked to roll back; then its prewrite fails.
  const Timestamp t3 = Ts(3000);
  EXPECT_EQ(s.Check("s", t3, Ts(3001)).state, TxnState::kNotFound);
  EXPECT_EQ(s.Check("s", t3, Ts(3001), 0, /*rollback_if_missing=*/true).state,
            TxnState::kRolledBack);
  EXPECT_EQ(s.Prewrite(t3, "s", {Put("s", "1")}).error, TxnError::kRolledBack);
}

TEST(Percolator, HeartbeatKeepsALongTransactionAlive) {
  Shard s;
  const Timestamp start = Ts(1000);
  ASSERT_TRUE(s.Prewrite(start, "p", {Put("p", "1")}, 100).ok());
  auto hb = s.Run(
      [&](TxnRows& t, storage::WriteBatch* b) { return t.Heartbeat(Row("p"), start, 5000, b); });
  ASSERT_TRUE(hb.ok());
  EXPECT_EQ(hb.lock->ttl_ms, 5000u);
  EXPECT_EQ(s.Check("p", start, Ts(3000)).state, TxnState::kLocked);
  // Never shortened.
  hb = s.Run(
      [&](TxnRows& t, storage::WriteBatch* b) { return t.Heartbeat(Row("p"), start, 10, b); });
  EXPECT_EQ(hb.lock->ttl_ms, 5000u);
  EXPECT_EQ(s.Check("p", start, Ts(6000)).state, TxnState::kRolledBack);
  hb = s.Run(
      [&](TxnRows& t, storage::WriteBatch* b) { return t.Heartbeat(Row("p"), start, 10, b); });
  EXPECT_EQ(hb.error, TxnError::kRolledBack);
  hb = s.Run(
      [&](TxnRows& t, storage::WriteBatch* b) { return t.Heartbeat(Row("x"), start, 10, b); });
  EXPECT_EQ(hb.error, TxnError::kLockNotFound);
}

TEST(Percolator, ReadsResolveOnlyTheLocksThatCanHideAVersion) {
  Shard s;
  ASSERT_TRUE(
      s.Prewrite(Ts(10), "p",
                 {Put("p", "1"), Put("s", "2"), TxnMutation{LockKind::kCheck, Row("c"), "", 0}})
          .ok());
  // Below start_ts: the commit will be above the read.
  EXPECT_FALSE(s.Blocker("s", {Ts(9), {}, false}));
  EXPECT_TRUE(s.Blocker("s", {Ts(10), {}, false}));
  EXPECT_TRUE(s.Blocker("p", {Ts(10), {}, false}));
  // A check-only lock never hides a version.
  EXPECT_FALSE(s.Blocker("c", {Ts(10), {}, false}));
  // Resolved by the reader.
  EXPECT_FALSE(s.Blocker("s", {Ts(10), {Ts(3), Ts(10)}, false}));
  // A latest read skips a primary's own lock, not a secondary's.
  EXPECT_FALSE(s.Blocker("p", {mvcc::kMaxTimestamp, {}, true}));
  EXPECT_TRUE(s.Blocker("s", {mvcc::kMaxTimestamp, {}, true}));
  // A scan of the range lists the blocking locks in key order and skips rollback markers.
  ASSERT_TRUE(s.Rollback(Ts(5), {"a", "q"}).ok());
  auto all = s.rows().ReadBlockers(mvcc::CollectionPrefix(1, 1),
                                   mvcc::PrefixSuccessor(mvcc::CollectionPrefix(1, 1)),
                                   {Ts(10), {}, false}, 10);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].first, Row("p"));
  EXPECT_EQ((*all)[1].first, Row("s"));
  auto one = s.rows().ReadBlockers(mvcc::CollectionPrefix(1, 1),
                                   mvcc::PrefixSuccessor(mvcc::CollectionPrefix(1, 1)),
                                   {Ts(10), {}, false}, 1);
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->size(), 1u);
}

// ---------------------------------------------------------------------------------
// Transactions across shards, with the coordinator stopping at every point, and
// readers that resolve what they meet as docs/architecture/transactions.md says.

struct Cluster {
  std::map<std::string, Shard*> shard_of;  // key -> shard
  Shard* For(const std::string& k) { return shard_of.at(k); }
};

// A reader's view of one key at read_ts, resolving locks through the primary. Returns
// the value ("" when absent). `now` judges TTLs.
std::string ReadResolving(Cluster& c, const std::string& key, Timestamp read_ts, Timestamp now) {
  ReadLockRules rules{read_ts, {}, false};
  for (int attempt = 0; attempt < 10; ++attempt) {
    Shard* s = c.For(key);
    auto lock = s->Blocker(key, rules);
    if (!lock) return s->ValueAt(key, read_ts);
    // The primary's key, as a user key: rows are EncodeRowKey(1, 1, user key).
    auto d = mvcc::DecodeVersionKey(mvcc::EncodeVersionKey(lock->primary, 0));
    EXPECT_TRUE(d.ok());
    const std::string primary = d->user_key;
    const bool expired = Expired(*lock, now);
    auto st = c.For(primary)->Check(primary, lock->start_ts, now, read_ts, expired);
    switch (st.state) {
      case TxnState::kCommitted:
        EXPECT_TRUE(s->Commit(lock->start_ts, st.commit_ts, {key}).ok());
        break;
      case TxnState::kRolledBack:
        EXPECT_TRUE(s->Rollback(lock->start_ts, {key}).ok());
        break;
      case TxnState::kLocked:
        // Pushed above read_ts: invisible to this read.
        EXPECT_GT(st.min_commit_ts, read_ts);
        rules.resolved.push_back(lock->start_ts);
        break;
      case TxnState::kNotFound:
        ADD_FAILURE() << "a non-expired lock whose primary is missing: the test waits instead";
        return "?";
    }
  }
  ADD_FAILURE() << "lock resolution did not finish";
  return "?";
}

enum class Stop { kNone, kAfterFirstPrewrite, kAfterAllPrewrites, kAfterPrimaryCommit };

// Moves `amount` from `from` to `to` (values are decimal balances): returns whether the
// primary committed.
bool Transfer(Cluster& c, Timestamp start, Timestamp commit, const std::string& from,
              const std::string& to, int amount, Stop stop, std::map<std::string, int>& expect) {
  const int from_balance = std::stoi(c.For(from)->ValueAt(from, start));
  const int to_balance = std::stoi(c.For(to)->ValueAt(to, start));
  // Primary: `from`. Prewrite each shard's rows (here one row per shard).
  if (!c.For(from)
           ->Prewrite(start, from, {Put(from, std::to_string(from_balance - amount))}, 100)
           .ok()) {
    return false;
  }
  if (stop == Stop::kAfterFirstPrewrite) return false;
  if (!c.For(to)->Prewrite(start, from, {Put(to, std::to_string(to_balance + amount))}, 100).ok()) {
    EXPECT_TRUE(c.For(from)->Rollback(start, {from}).ok());
    return false;
  }
  if (stop == Stop::kAfterAllPrewrites) return false;
  if (!c.For(from)->Commit(start, commit, {from}, true).ok()) return false;
  expect[from] = from_balance - amount;
  expect[to] = to_balance + amount;
  if (stop == Stop::kAfterPrimaryCommit) return true;
  EXPECT_TRUE(c.For(to)->Commit(start, commit, {to}).ok());
  return true;
}

TEST(PercolatorCrashPoints, EveryStopOfTheCoordinatorIsRecoveredByReaders) {
  for (Stop stop : {Stop::kNone, Stop::kAfterFirstPrewrite, Stop::kAfterAllPrewrites,
                    Stop::kAfterPrimaryCommit}) {
    SCOPED_TRACE(static_cast<int>(stop));
    Shard s1, s2;
    Cluster c{{{"alice", &s1}, {"bob", &s2}}};
    s1.PutPlain("alice", Ts(1), "100");
    s2.PutPlain("bob", Ts(1), "100");
    std::map<std::string, int> expect{{"alice", 100}, {"bob", 100}};
    const bool committed = Transfer(c, Ts(1000), Ts(1001), "alice", "bob", 30, stop, expect);
    EXPECT_EQ(committed, stop == Stop::kNone || stop == Stop::kAfterPrimaryCommit);

    // A reader before the TTL runs out: the sum is exact at any timestamp, and a
    // committed transfer is seen in full.
    const Timestamp read = Ts(1050);
    const int sum = std::stoi(ReadResolving(c, "alice", read, read)) +
                    std::stoi(ReadResolving(c, "bob", read, read));
    EXPECT_EQ(sum, 200);
    // After the TTL: every lock is gone (rolled forward or back), balances as expected.
    const Timestamp later = Ts(5000);
    EXPECT_EQ(std::stoi(ReadResolving(c, "bob", later, later)), expect["bob"]);
    EXPECT_EQ(std::stoi(ReadResolving(c, "alice", later, later)), expect["alice"]);
    EXPECT_EQ(s1.LockRecords() + s2.LockRecords(), 0u);
    // A coordinator that comes back late cannot change the outcome.
    if (!committed) {
      EXPECT_EQ(s1.Commit(Ts(1000), Ts(1001), {"alice"}, true).error, TxnError::kRolledBack);
      EXPECT_EQ(s1.Prewrite(Ts(1000), "alice", {Put("alice", "0")}).error, TxnError::kRolledBack);
    } else {
      EXPECT_EQ(s1.Rollback(Ts(1000), {"alice"}).error, TxnError::kCommitted);
    }
  }
}

// Reader before the coordinator's commit, push, then the coordinator commits: its
// commit lands above the reader's timestamp, so the reader's snapshot never changes.
TEST(PercolatorCrashPoints, APushedTransactionCommitsAboveTheRead) {
  Shard s1, s2;
  Cluster c{{{"alice", &s1}, {"bob", &s2}}};
  s1.PutPlain("alice", Ts(1), "100");
  s2.PutPlain("bob", Ts(1), "100");
  std::map<std::string, int> expect;
  ASSERT_FALSE(Transfer(c, Ts(1000), 0, "alice", "bob", 30, Stop::kAfterAllPrewrites, expect));
  const Timestamp read = Ts(1010);
  EXPECT_EQ(ReadResolving(c, "bob", read, read), "100");
  // The coordinator took its commit timestamp before the read: refused, nothing changed.
  EXPECT_EQ(s1.Commit(Ts(1000), Ts(1005), {"alice"}, true).error, TxnError::kCommitTsTooLow);
  ASSERT_TRUE(s1.Commit(Ts(1000), Ts(1020), {"alice"}, true).ok());
  EXPECT_EQ(ReadResolving(c, "alice", read, read), "100");
  EXPECT_EQ(ReadResolving(c, "bob", read, read), "100");
  EXPECT_EQ(ReadResolving(c, "bob", Ts(1020), Ts(1020)), "130");
  EXPECT_EQ(ReadResolving(c, "alice", Ts(1020), Ts(1020)), "70");
}

// Seeded: random transfers among accounts on three shards, coordinators that stop at
// random points, and readers at random timestamps that resolve what they meet. Every
// snapshot's total is exact, and the final balances are those of the committed transfers.
TEST(PercolatorCrashPoints, RandomTransfersKeepEverySnapshotTotalExact) {
  const uint64_t seed = 4242;
  std::mt19937_64 rng(seed);
  Shard shards[3];
  Cluster c;
  std::vector<std::string> accounts;
  std::map<std::string, int> expect;
  for (int i = 0; i < 9; ++i) {
    std::string a = "acct" + std::to_string(i);
    accounts.push_back(a);
    c.shard_of[a] = &shards[i % 3];
    shards[i % 3].PutPlain(a, Ts(1), "100");
    expect[a] = 100;
  }
  uint64_t ms = 10;
  for (int step = 0; step < 400; ++step) {
    SCOPED_TRACE("seed " + std::to_string(seed) + " step " + std::to_string(step));
    ms += 1 + rng() % 60;  // sometimes past a lock's 100 ms TTL, sometimes not
    const auto& from = accounts[rng() % accounts.size()];
    auto to = accounts[rng() % accounts.size()];
    if (to == from) continue;
    if (rng() % 3 == 0) {
      const Timestamp read = Ts(ms, 1);
      int sum = 0;
      for (auto& a : accounts) {
        // Wait out locks whose primary was never prewritten (the reader backs off).
        std::string v;
        for (uint64_t wait = 0;; wait += 50) {
          Shard* s = c.For(a);
          auto lock = s->Blocker(a, {read, {}, false});
          if (!lock || Expired(*lock, Ts(ms + wait, 2))) {
            v = ReadResolving(c, a, read, Ts(ms + wait, 2));
            break;
          }
          auto d = mvcc::DecodeVersionKey(mvcc::EncodeVersionKey(lock->primary, 0));
          auto st = c.For(d->user_key)->Check(d->user_key, lock->start_ts, Ts(ms + wait, 2), read);
          if (st.state != TxnState::kNotFound) {
            v = ReadResolving(c, a, read, Ts(ms + wait, 2));
            break;
          }
        }
        ASSERT_NE(v, "?");
        sum += std::stoi(v);
      }
      ASSERT_EQ(sum, 900) << "at " << read;
      continue;
    }
    // A writer resolves what blocks it first, as readers do.
    const Timestamp start = Ts(ms, 3);
    ReadResolving(c, from, start, Ts(ms + 200, 0));
    ReadResolving(c, to, start, Ts(ms + 200, 0));
    ms += 201;  // the resolution above waited out every TTL
    const Timestamp start2 = Ts(ms, 4);
    Stop stop = static_cast<Stop>(rng() % 6 < 3 ? 0 : 1 + rng() % 3);
    Transfer(c, start2, Ts(ms, 5), from, to, 1 + rng() % 20, stop, expect);
  }
  const Timestamp end = Ts(ms + 10'000);
  for (auto& a : accounts) EXPECT_EQ(std::stoi(ReadResolving(c, a, end, end)), expect[a]) << a;
  for (auto& s : shards) EXPECT_EQ(s.LockRecords(), 0u);
}

// MayHoldLocks is false only for a span with no lock and no rollback marker in it, its
// ends included; a committed lock leaves nothing behind on an engine without deletes.
TEST(TxnRowsTest, MayHoldLocksSeesLocksAndMarkersInTheSpanOnly) {
  Shard s;
  auto may = [&](std::string_view a, std::string_view b) {
    return s.rows().MayHoldLocks(Row(a), Row(b));
  };
  EXPECT_FALSE(may("a", "z"));
  ASSERT_TRUE(s.Prewrite(10, "k", {Put("k", "v")}).ok());
  EXPECT_TRUE(may("a", "z"));
  EXPECT_TRUE(may("k", "k"));
  EXPECT_TRUE(may("a", "k"));
  EXPECT_FALSE(may("a", "j"));
  EXPECT_FALSE(may("l", "z"));
  ASSERT_TRUE(s.Commit(10, 20, {"k"}, true).ok());
  EXPECT_FALSE(may("a", "z"));
  ASSERT_TRUE(s.Rollback(30, {"m"}).ok());  // a marker on "m"
  EXPECT_TRUE(may("m", "m"));
  EXPECT_FALSE(may("n", "z"));
}

}  // namespace
}  // namespace gojodb::txn
