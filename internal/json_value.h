// API.md's value rules, shared by the HTTP API and the CLI.
// Into storage: a JSON string is its raw UTF-8 text, any other JSON value its JSON
// text. Out of storage: bytes that parse as JSON become that JSON value (in `field`),
// other UTF-8 text a string (in `field`), anything else base64 (in `field`_base64).
// Keys use parse_json = false: a key is never reinterpreted as JSON.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>

namespace gojodb {

// JSON nested deeper than this is refused where it is parsed: printing or copying a
// value recurses once per level.
inline constexpr int kMaxJsonDepth = 128;
// `text` parsed, or a discarded value (is_discarded()) when it is not JSON or nests
// deeper than max_depth.
nlohmann::json ParseJson(std::string_view text, int max_depth = kMaxJsonDepth);

std::string StoredBytesFromJson(const nlohmann::json& value);
void SetBytesField(nlohmann::json& obj, const std::string& field, std::string_view bytes,
                   bool parse_json);

}  // namespace gojodb
