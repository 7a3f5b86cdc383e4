// Byte-level formatting for the CLI: UTF-8 checks, display escaping, base64, aligned
// text tables and the JSON value rules of API.md. Pure functions, no I/O.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace gojodb::cli {

// Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF.
bool IsValidUtf8(std::string_view bytes);

// Valid UTF-8 without control characters other than '\n' and '\t': safe to write to a
// terminal as it is.
bool IsPrintableText(std::string_view bytes);

// One-line, unambiguous rendering of arbitrary bytes: valid UTF-8 text stays as it is,
// except '\\' -> "\\\\", '\n' -> "\\n", '\r' -> "\\r", '\t' -> "\\t"; every other control
// byte, C1 control and byte of invalid UTF-8 becomes "\\xHH".
std::string EscapeForDisplay(std::string_view bytes);

// Columns a string takes on a terminal, counted in code points (each counts 1).
size_t DisplayWidth(std::string_view text);

// Standard base64 (RFC 4648) with padding.
std::string Base64Encode(std::string_view bytes);

// Left-aligned columns separated by two spaces, one line per row after the header,
// every line ending in '\n'. The last column is not padded. Cells are written as given;
// escape them first. A row with fewer cells than the header leaves the rest empty.
std::string RenderTable(const std::vector<std::string>& header,
                        const std::vector<std::vector<std::string>>& rows);

// API.md's rule for bytes leaving the store, as the HTTP API applies it: with parse_json,
// non-empty bytes that parse as JSON become that JSON value in `field`; other valid
// UTF-8 becomes a string in `field`; anything else becomes base64 in `field`_base64.
// Keys use parse_json = false (a key is never reinterpreted as JSON).
void SetBytesField(nlohmann::json& obj, const std::string& field, std::string_view bytes,
                   bool parse_json);

// Compact one-line JSON text, without a trailing newline.
std::string DumpJson(const nlohmann::json& doc);

}  // namespace gojodb::cli
