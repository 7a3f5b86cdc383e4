#include "tests/linearizability/checker.h"

#include <gtest/gtest.h>

#include <random>

namespace gojodb::linearizability {
namespace {

Op W(int client, int64_t call, int64_t ret, std::string value, uint64_t version) {
  Op op;
  op.kind = Op::Kind::kWrite;
  op.key = "k";
  op.client = client;
  op.call = call;
  op.ret = ret;
  op.value = std::move(value);
  op.version = version;
  return op;
}
Op R(int client, int64_t call, int64_t ret, std::string value, uint64_t version) {
  Op op;
  op.key = "k";
  op.client = client;
  op.call = call;
  op.ret = ret;
  op.found = !value.empty();
  op.value = std::move(value);
  op.version = version;
  return op;
}
Op Cas(int client, int64_t call, int64_t ret, uint64_t expected, std::string value, bool ok,
       uint64_t version = 0) {
  Op op = W(client, call, ret, std::move(value), version);
  op.kind = Op::Kind::kCas;
  op.expected = expected;
  op.ok = ok;
  return op;
}
Op Unknown(Op op) {
  op.unknown = true;
  op.ret = std::numeric_limits<int64_t>::max();
  op.version = 0;
  return op;
}

TEST(Checker, SequentialHistoryIsLinearizable) {
  EXPECT_TRUE(Check({R(1, 0, 1, "", 0), W(1, 2, 3, "a", 10), R(2, 4, 5, "a", 10),
                     Cas(1, 6, 7, 10, "b", true, 20), R(2, 8, 9, "b", 20)})
                  .linearizable);
}

TEST(Checker, StaleReadIsRefused) {
  auto v = Check({W(1, 0, 1, "a", 10), W(1, 2, 3, "b", 20), R(2, 4, 5, "a", 10)});
  EXPECT_FALSE(v.linearizable);
  EXPECT_FALSE(v.gave_up);
  EXPECT_EQ(v.key, "k");
  EXPECT_NE(v.explanation.find("read a"), std::string::npos) << v.explanation;
}

TEST(Checker, ConcurrentReadMaySeeEitherValue) {
  EXPECT_TRUE(
      Check({W(1, 0, 1, "a", 10), W(1, 2, 6, "b", 20), R(2, 3, 4, "a", 10), R(3, 3, 5, "b", 20)})
          .linearizable);
  // ...but not the old value after another reader saw the new one and returned.
  EXPECT_FALSE(
      Check({W(1, 0, 1, "a", 10), W(1, 2, 9, "b", 20), R(2, 3, 4, "b", 20), R(3, 5, 6, "a", 10)})
          .linearizable);
}

TEST(Checker, UnknownOutcomesMayOrMayNotTakeEffect) {
  // Never seen: fine.
  EXPECT_TRUE(
      Check({W(1, 0, 1, "a", 10), Unknown(W(2, 2, 0, "x", 0)), R(3, 5, 6, "a", 10)}).linearizable);
  // Seen later, even long after: fine (it took effect late).
  EXPECT_TRUE(
      Check({W(1, 0, 1, "a", 10), Unknown(W(2, 2, 0, "x", 0)), R(3, 5, 6, "x", 15)}).linearizable);
  // But never before it was invoked.
  EXPECT_FALSE(
      Check({W(1, 0, 1, "a", 10), R(3, 2, 3, "x", 15), Unknown(W(2, 5, 0, "x", 0))}).linearizable);
}

TEST(Checker, AnUnseenUnknownWriteStillExplainsAFailedCas) {
  // Only the unknown write can explain why the cas on version 10 failed.
  EXPECT_TRUE(Check({W(1, 0, 1, "a", 10), Unknown(W(2, 2, 0, "x", 0)), R(3, 2, 3, "a", 10),
                     Cas(3, 5, 6, 10, "b", false)})
                  .linearizable);
  // Without it, the same failure is refused.
  EXPECT_FALSE(
      Check({W(1, 0, 1, "a", 10), R(3, 2, 3, "a", 10), Cas(3, 5, 6, 10, "b", false)}).linearizable);
}

TEST(Checker, CompareAndSetFollowsVersions) {
  // A cas that failed although nothing else could have intervened: refused.
  EXPECT_FALSE(Check({W(1, 0, 1, "a", 10), Cas(2, 2, 3, 10, "b", false)}).linearizable);
  // Two cas on the same version cannot both succeed.
  EXPECT_FALSE(
      Check({W(1, 0, 1, "a", 10), Cas(2, 2, 5, 10, "b", true, 20), Cas(3, 2, 5, 10, "c", true, 30)})
          .linearizable);
  // One wins, the other fails: fine in either order of their calls.
  EXPECT_TRUE(
      Check({W(1, 0, 1, "a", 10), Cas(2, 2, 5, 10, "b", true, 20), Cas(3, 2, 5, 10, "c", false)})
          .linearizable);
  // Create-if-absent.
  EXPECT_TRUE(Check({Cas(1, 0, 1, 0, "a", true, 10), Cas(2, 2, 3, 0, "b", false)}).linearizable);
  EXPECT_FALSE(
      Check({Cas(1, 0, 1, 0, "a", true, 10), Cas(2, 2, 3, 0, "b", true, 20)}).linearizable);
}

TEST(Checker, ContradictoryObservationsAreRefused) {
  EXPECT_FALSE(Check({W(1, 0, 1, "a", 10), R(2, 2, 3, "zzz", 10)}).linearizable);
  EXPECT_FALSE(Check({W(1, 0, 1, "a", 10), R(2, 2, 3, "a", 11)}).linearizable);
  EXPECT_FALSE(Check({W(1, 0, 1, "a", 10), W(2, 2, 3, "a", 11)}).linearizable);
}

// Random concurrent histories of a real register: always linearizable; the same
// history with one read's answer replaced by an older value is (almost always) not.
TEST(Checker, RandomHistoriesOfARealRegister) {
  for (uint32_t seed = 1; seed <= 30; ++seed) {
    std::mt19937 rng(seed);
    std::vector<Op> history;
    std::string value;  // current
    uint64_t version = 0;
    uint64_t next_version = 1;
    int64_t t = 0;
    // Each op takes effect at a random point inside its interval; ops of different
    // clients overlap. Simulated by choosing the effect order first and then widening
    // each op's interval around its effect time without crossing its client's others.
    const int kClients = 5, kOps = 120;
    std::vector<int64_t> client_free(kClients, 0);
    for (int i = 0; i < kOps; ++i) {
      t += 10;
      const int c = static_cast<int>(rng() % kClients);
      Op op;
      op.key = "k";
      op.client = c;
      op.call = std::max(client_free[c], t - static_cast<int64_t>(rng() % 25));
      if (op.call > t) op.call = t;
      op.ret = t + static_cast<int64_t>(rng() % 25);
      client_free[c] = op.ret + 1;
      const int kind = static_cast<int>(rng() % 3);
      if (kind == 0) {
        op.found = version != 0;
        op.value = value;
        op.version = version;
      } else if (kind == 1) {
        op.kind = Op::Kind::kWrite;
        op.value = "v" + std::to_string(i);
        op.version = next_version++;
        value = op.value;
        version = op.version;
      } else {
        op.kind = Op::Kind::kCas;
        op.value = "v" + std::to_string(i);
        op.expected = rng() % 2 ? version : version + 1000;
        op.ok = op.expected == version;
        if (op.ok) {
          op.version = next_version++;
          value = op.value;
          version = op.version;
        }
      }
      history.push_back(op);
    }
    auto v = Check(history);
    ASSERT_TRUE(v.linearizable) << "seed " << seed << ": " << v.explanation;
    EXPECT_FALSE(v.gave_up);
  }
}

TEST(Checker, KeysAreCheckedIndependently) {
  Op a = W(1, 0, 1, "a", 10);
  Op b = R(2, 2, 3, "", 0);
  b.key = "other";
  EXPECT_TRUE(Check({a, b}).linearizable);
  Op c = R(2, 2, 3, "", 0);
  auto v = Check({a, c});
  EXPECT_FALSE(v.linearizable);
  EXPECT_EQ(v.key, "k");
}

}  // namespace
}  // namespace gojodb::linearizability
