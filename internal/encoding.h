// Byte encodings shared by every layer that shows bytes to people or JSON: base64 and
// UTF-8 validation. Pure functions, safe on any input (fuzzed through the HTTP codec).
#pragma once

#include <string>
#include <string_view>

#include "internal/status.h"

namespace gojodb {

// Standard base64 (RFC 4648) with padding; rejects bad characters, bad padding and
// non-canonical trailing bits, so every byte string has exactly one encoding.
Result<std::string> Base64Decode(std::string_view in);
std::string Base64Encode(std::string_view in);

// The value of one hexadecimal digit (either case), or -1.
int HexDigitValue(char c);

// Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF.
bool IsValidUtf8(std::string_view s);

}  // namespace gojodb
