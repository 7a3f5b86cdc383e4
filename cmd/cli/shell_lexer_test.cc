#include "cmd/cli/shell_lexer.h"

#include <gtest/gtest.h>

namespace gojodb::cli {
namespace {

using Words = std::vector<std::string>;

Words Split(std::string_view line) {
  auto r = SplitShellLine(line);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : Words{};
}

TEST(ShellLexer, SplitsOnSpacesAndTabs) {
  EXPECT_EQ(Split("put  k\tv "), (Words{"put", "k", "v"}));
  EXPECT_EQ(Split(""), Words{});
  EXPECT_EQ(Split("   \t "), Words{});
}

TEST(ShellLexer, DoubleQuotesKeepSpacesAndJoinAdjacentText) {
  EXPECT_EQ(Split(R"(put "my key" "a  value")"), (Words{"put", "my key", "a  value"}));
  EXPECT_EQ(Split(R"(ab"c d"e)"), (Words{"abc de"}));
  EXPECT_EQ(Split(R"(get "")"), (Words{"get", ""}));
}

TEST(ShellLexer, EscapesInsideDoubleQuotes) {
  EXPECT_EQ(Split(R"("say \"hi\"" "a\\b" "l1\nl2\t." "\x41\x7a")"),
            (Words{"say \"hi\"", "a\\b", "l1\nl2\t.", "Az"}));
  EXPECT_EQ(Split(R"("\0")"), (Words{std::string(1, '\0')}));
  EXPECT_EQ(Split(R"("\xff")"), (Words{"\xff"}));
}

TEST(ShellLexer, EscapesOutsideQuotes) {
  EXPECT_EQ(Split(R"(put my\ key v\"x)"), (Words{"put", "my key", "v\"x"}));
}

TEST(ShellLexer, SingleQuotesAreLiteral) {
  EXPECT_EQ(Split(R"(put k '{"a": 1, "b": "x\n"}')"),
            (Words{"put", "k", R"({"a": 1, "b": "x\n"})"}));
  EXPECT_EQ(Split("''"), (Words{""}));
}

TEST(ShellLexer, CommentLines) {
  EXPECT_EQ(Split("# put k v"), Words{});
  EXPECT_EQ(Split("  #x"), Words{});
  // Not a comment in the middle of a line.
  EXPECT_EQ(Split("put k #v"), (Words{"put", "k", "#v"}));
}

TEST(ShellLexer, Errors) {
  struct Case {
    const char* line;
    const char* message_part;
  };
  const Case cases[] = {
      {R"(put "k v)", "unterminated double quote at column 5"},
      {R"(put 'k v)", "unterminated single quote at column 5"},
      {R"(put "k\")", "unterminated double quote"},
      {R"(put k\)", "trailing backslash"},
      {R"(put "\q")", "unknown escape '\\q'"},
      {R"(put "\x4")", "two hex digits"},
      {R"(put "\xg1")", "two hex digits"},
      {R"(put "a\ b")", "unknown escape"},  // "\ " only outside quotes
  };
  for (const auto& c : cases) {
    auto r = SplitShellLine(c.line);
    ASSERT_FALSE(r.ok()) << c.line;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << c.line;
    EXPECT_NE(r.status().message().find(c.message_part), std::string::npos)
        << c.line << " -> " << r.status().message();
  }
}

}  // namespace
}  // namespace gojodb::cli
