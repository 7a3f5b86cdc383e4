// Pure decoding helpers for the HTTP API: percent-encoding, base64, UTF-8 checks and
// the JSON value rules of API.md. No I/O; every function is safe on any input (fuzzed
// by tests/fuzz/http_request_fuzzer.cc).
#pragma once

#include <map>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "internal/status.h"

namespace gojodb::http {

// Strict RFC 3986 percent-decoding: '%' must be followed by two hex digits. '+' is
// kept as '+' in paths and becomes a space in query strings when plus_is_space.
Result<std::string> PercentDecode(std::string_view in, bool plus_is_space);
std::string PercentEncode(std::string_view in);

// Standard base64 (RFC 4648) with padding; rejects bad characters and bad padding.
Result<std::string> Base64Decode(std::string_view in);
std::string Base64Encode(std::string_view in);

bool IsValidUtf8(std::string_view s);

// Parses "a=1&b=2". Rejects repeated keys and bad encodings.
Result<std::map<std::string, std::string>> ParseQuery(std::string_view query);

// Parses a decimal uint64 with no sign, spaces or overflow.
Result<uint64_t> ParseUint64(std::string_view s, std::string_view what);

// API.md value rules. Into storage: a JSON string is its raw UTF-8 text, any other
// JSON value its JSON text. Out of storage: bytes that parse as JSON become that JSON
// value (in `field`), other UTF-8 text a string (in `field`), anything else base64 (in
// `field`_base64).
std::string StoredBytesFromJson(const nlohmann::json& value);
void SetBytesField(nlohmann::json& obj, const std::string& field, std::string_view bytes,
                   bool parse_json);

}  // namespace gojodb::http
