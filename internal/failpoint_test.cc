#include "internal/failpoint.h"

#include <gtest/gtest.h>

#include <vector>

namespace gojodb::failpoint {
namespace {

TEST(FailpointTest, RunsTheActionSetForTheNameWithTheArgument) {
  std::vector<uint64_t> seen;
  Hit("test.a", 1);  // nothing set: nothing runs
  {
    Scoped a("test.a", [&](uint64_t arg) { seen.push_back(arg); });
    Hit("test.a", 7);
    Hit("test.b", 8);  // another name
    Hit("test.a", 9);
    Set("test.a", [&](uint64_t arg) { seen.push_back(arg * 100); });  // replaced
    Hit("test.a", 2);
  }
  Hit("test.a", 3);  // cleared with the scope
  EXPECT_EQ(seen, (std::vector<uint64_t>{7, 9, 200}));
}

TEST(FailpointTest, AnActionMaySetAndClearPoints) {
  int hits = 0;
  Set("test.outer", [&](uint64_t) {
    ++hits;
    Set("test.inner", [&](uint64_t) { ++hits; });
    Clear("test.outer");
  });
  Hit("test.outer");
  Hit("test.outer");
  Hit("test.inner");
  Clear("test.inner");
  Hit("test.inner");
  EXPECT_EQ(hits, 2);
}

}  // namespace
}  // namespace gojodb::failpoint
