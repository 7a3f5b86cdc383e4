// Byte-level formatting for the CLI: UTF-8 checks, display escaping, base64, aligned
// text tables and the JSON value rules of API.md. Pure functions, no I/O.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "internal/encoding.h"
#include "internal/json_value.h"

namespace gojodb::cli {

// Shared with the HTTP API (internal/encoding.h, internal/json_value.h).
using ::gojodb::Base64Encode;
using ::gojodb::IsValidUtf8;
using ::gojodb::SetBytesField;

// Valid UTF-8 without control characters other than '\n' and '\t': safe to write to a
// terminal as it is.
bool IsPrintableText(std::string_view bytes);

// One-line, unambiguous rendering of arbitrary bytes: valid UTF-8 text stays as it is,
// except '\\' -> "\\\\", '\n' -> "\\n", '\r' -> "\\r", '\t' -> "\\t"; every other control
// byte, C1 control and byte of invalid UTF-8 becomes "\\xHH".
std::string EscapeForDisplay(std::string_view bytes);

// Columns a string takes on a terminal, counted in code points (each counts 1).
size_t DisplayWidth(std::string_view text);

// Left-aligned columns separated by two spaces, one line per row after the header,
// every line ending in '\n'. The last column is not padded. Cells are written as given;
// escape them first. A row with fewer cells than the header leaves the rest empty.
std::string RenderTable(const std::vector<std::string>& header,
                        const std::vector<std::vector<std::string>>& rows);

// Compact one-line JSON text, without a trailing newline.
std::string DumpJson(const nlohmann::json& doc);

}  // namespace gojodb::cli
