#include "internal/json_value.h"

#include <nlohmann/json.hpp>

#include "internal/encoding.h"

namespace gojodb {

std::string StoredBytesFromJson(const nlohmann::json& value) {
  if (value.is_string()) return value.get<std::string>();
  return value.dump();
}

void SetBytesField(nlohmann::json& obj, const std::string& field, std::string_view bytes,
                   bool parse_json) {
  if (parse_json && !bytes.empty()) {
    auto parsed = nlohmann::json::parse(bytes.begin(), bytes.end(), nullptr, false);
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
