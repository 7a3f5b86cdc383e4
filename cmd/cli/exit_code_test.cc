#include "cmd/cli/exit_code.h"

#include <gtest/gtest.h>

namespace gojodb::cli {
namespace {

TEST(ExitCode, MapsStatusCodes) {
  EXPECT_EQ(ExitCodeFor(Status::OK()), ExitCode::kOk);
  EXPECT_EQ(ExitCodeFor(Status::NotFound("x")), ExitCode::kNotFound);
  EXPECT_EQ(ExitCodeFor(Status::FailedPrecondition("x")), ExitCode::kError);
  EXPECT_EQ(ExitCodeFor(Status::InvalidArgument("x")), ExitCode::kError);
  EXPECT_EQ(ExitCodeFor(Status::Unavailable("x")), ExitCode::kError);
  EXPECT_EQ(ExitCodeFor(Status::AlreadyExists("x")), ExitCode::kError);
  EXPECT_EQ(static_cast<int>(ExitCode::kUsage), 2);
  EXPECT_EQ(static_cast<int>(ExitCode::kError), 3);
}

TEST(ExitCode, ErrorLineNamesTheCode) {
  EXPECT_EQ(ErrorLine(Status::NotFound("collection 'x' does not exist")),
            "error: NOT_FOUND: collection 'x' does not exist");
}

TEST(ExitCode, ErrorLineCarriesDetails) {
  Status s = Status::FailedPrecondition("version mismatch")
                 .WithDetail("current_version", "42")
                 .WithDetail("key", "k");
  EXPECT_EQ(ErrorLine(s),
            "error: FAILED_PRECONDITION: version mismatch [current_version=42, key=k]");
}

TEST(ExitCode, ErrorLineIsOneLine) {
  EXPECT_EQ(ErrorLine(Status::Internal("a\nb\r\nc")), "error: INTERNAL: a b  c");
  EXPECT_EQ(UsageErrorLine("bad\nflag"), "error: bad flag");
}

}  // namespace
}  // namespace gojodb::cli
