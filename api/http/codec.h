// Pure decoding helpers for the HTTP API: percent-encoding, base64, UTF-8 checks and
// the JSON value rules of API.md. No I/O; every function is safe on any input (fuzzed
// by tests/fuzz/http_request_fuzzer.cc).
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "internal/encoding.h"
#include "internal/json_value.h"
#include "internal/status.h"

namespace gojodb::http {

// Strict RFC 3986 percent-decoding: '%' must be followed by two hex digits. '+' is
// kept as '+' in paths and becomes a space in query strings when plus_is_space.
Result<std::string> PercentDecode(std::string_view in, bool plus_is_space);
std::string PercentEncode(std::string_view in);

// Parses "a=1&b=2". Rejects repeated keys and bad encodings.
Result<std::map<std::string, std::string>> ParseQuery(std::string_view query);

// Parses a decimal uint64 with no sign, spaces or overflow.
Result<uint64_t> ParseUint64(std::string_view s, std::string_view what);

// Shared encodings (internal/encoding.h, internal/json_value.h).
using ::gojodb::Base64Decode;
using ::gojodb::Base64Encode;
using ::gojodb::IsValidUtf8;
using ::gojodb::SetBytesField;
using ::gojodb::StoredBytesFromJson;

}  // namespace gojodb::http
