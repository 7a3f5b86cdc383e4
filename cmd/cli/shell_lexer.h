// Splits one line of the interactive shell into words.
//
//   put "my key" "a value with \"quotes\""   ->  put | my key | a value with "quotes"
//   put k '{"a": 1}'                          ->  put | k | {"a": 1}
//
// Rules:
//   - Words are separated by spaces and tabs; quoted parts join the word around them
//     (ab"c d" is the one word `abc d`). "" and '' give an empty word.
//   - Double quotes allow backslash escapes; single quotes take everything literally up
//     to the next single quote.
//   - Escapes, outside single quotes: \\ \" \' \n \r \t \0 \xHH (two hex digits) and,
//     outside quotes, "\ " (a space). Any other escape is an error.
//   - A line whose first word starts with '#' is a comment: no words.
//   - An unterminated quote or a trailing backslash is an error (INVALID_ARGUMENT).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "internal/status.h"

namespace gojodb::cli {

Result<std::vector<std::string>> SplitShellLine(std::string_view line);

}  // namespace gojodb::cli
