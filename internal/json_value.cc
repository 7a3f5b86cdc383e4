#include "internal/json_value.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "internal/encoding.h"

namespace gojodb {

nlohmann::json ParseJson(std::string_view text, int max_depth) {
  int deepest = 0;
  nlohmann::json::parser_callback_t track = [&](int depth, nlohmann::json::parse_event_t,
                                                nlohmann::json&) {
    deepest = std::max(deepest, depth);
    return true;
  };
  auto j = nlohmann::json::parse(text.begin(), text.end(), track, /*allow_exceptions=*/false);
  if (deepest > max_depth) return nlohmann::json(nlohmann::json::value_t::discarded);
  return j;
}

std::string StoredBytesFromJson(const nlohmann::json& value) {
  if (value.is_string()) return value.get<std::string>();
  return value.dump();
}

void SetBytesField(nlohmann::json& obj, const std::string& field, std::string_view bytes,
                   bool parse_json) {
  if (parse_json && !bytes.empty()) {
    auto parsed = ParseJson(bytes);
    if (!parsed.is_discarded()) {
      obj[field] = std::move(parsed);
      return;
    }
  }
  if (IsValidUtf8(bytes)) {
    obj[field] = std::string(bytes);
  } else {
    obj[field + "_base64"] = Base64Encode(bytes);
  }
}

}  // namespace gojodb
