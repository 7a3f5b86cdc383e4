#include "tests/raft_kv/linearizability.h"

#include <gtest/gtest.h>

namespace gojodb::testing {
namespace {

RegisterOp W(std::string v, int64_t call, int64_t ret) { return {true, std::move(v), call, ret}; }
RegisterOp R(std::optional<std::string> v, int64_t call, int64_t ret) {
  return {false, std::move(v), call, ret};
}

TEST(LinearizabilityTest, AcceptsValidHistories) {
  EXPECT_TRUE(CheckRegisterLinearizable({W("a", 0, 10), R("a", 20, 30)}));
  // Concurrent write and read: the read may see either value.
  EXPECT_TRUE(CheckRegisterLinearizable({W("a", 0, 10), W("b", 20, 40), R("a", 25, 30)}));
  EXPECT_TRUE(CheckRegisterLinearizable({W("a", 0, 10), W("b", 20, 40), R("b", 25, 30)}));
  // A write with an unknown outcome may have happened...
  EXPECT_TRUE(CheckRegisterLinearizable({W("a", 0, RegisterOp::kUnknown), R("a", 50, 60)}));
  // ...or not.
  EXPECT_TRUE(
      CheckRegisterLinearizable({W("a", 0, RegisterOp::kUnknown), R(std::nullopt, 50, 60)}));
}

TEST(LinearizabilityTest, RejectsStaleAndImpossibleReads) {
  // A read after a completed write must not see the older value.
  EXPECT_FALSE(CheckRegisterLinearizable({W("a", 0, 10), W("b", 20, 30), R("a", 40, 50)}));
  // A value nobody wrote.
  EXPECT_FALSE(CheckRegisterLinearizable({W("a", 0, 10), R("z", 20, 30)}));
  // Two sequential reads cannot go back in time.
  EXPECT_FALSE(
      CheckRegisterLinearizable({W("a", 0, 10), W("b", 5, 100), R("b", 20, 30), R("a", 40, 50)}));
  // A lost acknowledged write: read absent after it completed.
  EXPECT_FALSE(CheckRegisterLinearizable({W("a", 0, 10), R(std::nullopt, 20, 30)}));
}

}  // namespace
}  // namespace gojodb::testing
