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
    Set("test.a", [&](uint64_t arg) {  // replaced
      seen.push_back(arg * 100);
      return Status::OK();
    });
    Hit("test.a", 2);
  }
  Hit("test.a", 3);  // cleared with the scope
  EXPECT_EQ(seen, (std::vector<uint64_t>{7, 9, 200}));
}

TEST(FailpointTest, AnActionMaySetAndClearPoints) {
  int hits = 0;
  Set("test.outer", [&](uint64_t) {
    ++hits;
    Set("test.inner", [&](uint64_t) {
      ++hits;
      return Status::OK();
    });
    Clear("test.outer");
    return Status::OK();
  });
  Hit("test.outer");
  Hit("test.outer");
  Hit("test.inner");
  Clear("test.inner");
  Hit("test.inner");
  EXPECT_EQ(hits, 2);
}

TEST(FailpointTest, InjectReturnsTheActionsError) {
  EXPECT_TRUE(Inject("test.e", 1).ok());
  int calls = 0;
  {
    ScopedError e("test.e", [&](uint64_t arg) {
      ++calls;
      return arg == 2 ? Status::Unavailable("injected") : Status::OK();
    });
    EXPECT_TRUE(Inject("test.e", 1).ok());
    EXPECT_EQ(Inject("test.e", 2).code(), StatusCode::kUnavailable);
    Hit("test.e", 2);  // runs it, ignores the error
  }
  EXPECT_TRUE(Inject("test.e", 2).ok());
  EXPECT_EQ(calls, 3);
}

}  // namespace
}  // namespace gojodb::failpoint
