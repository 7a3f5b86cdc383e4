#include "core/kv/ndjson.h"

#include <nlohmann/json.hpp>

#include "core/document/document.h"
#include "internal/json_value.h"

namespace gojodb::kv {

using nlohmann::json;

Result<NdjsonRecords> DecodeNdjson(std::string_view body, uint64_t first_line,
                                   const std::string& key_field) {
  if (first_line == 0) return Status::InvalidArgument("first_line counts from 1");
  if (key_field.empty()) return Status::InvalidArgument("key_field must not be empty");
  NdjsonRecords out;
  const std::vector<std::string> keep = {key_field};
  uint64_t line = first_line;
  auto refuse = [&](const char* reason, std::string message) {
    out.errors.push_back(
        {line, Status::InvalidArgument(std::move(message)).WithDetail("reason", reason)});
  };
  size_t pos = 0;
  while (pos < body.size()) {
    size_t end = body.find('\n', pos);
    if (end == std::string_view::npos) end = body.size();
    std::string_view text = body.substr(pos, end - pos);
    if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
    pos = end + 1;
    ++out.lines;
    out.last_line = line;
    const bool blank = text.find_first_not_of(" \t") == std::string_view::npos;
    if (!blank) {
      // A document is checked whole but only its key member is built; a line that is
      // not one is parsed again to say why.
      auto j = document::ParseDocumentFields(text, keep);
      if (!j.ok() && ParseJson(text).is_discarded()) {
        refuse("NOT_JSON", "not valid JSON (or nested deeper than " +
                               std::to_string(kMaxJsonDepth) + " levels)");
      } else if (!j.ok()) {
        refuse("NOT_A_DOCUMENT", "a line must hold a JSON object");
      } else {
        auto k = j->find(key_field);
        if (k == j->end()) {
          refuse("NO_KEY", "the document has no '" + key_field.substr(0, 64) + "' field");
        } else if (k->is_string()) {
          out.records.push_back({line, k->get<std::string>(), std::string(text)});
        } else if (k->is_number_integer()) {
          out.records.push_back({line, k->dump(), std::string(text)});
        } else {
          refuse("NO_KEY", "'" + key_field.substr(0, 64) + "' must be a string or an integer");
        }
      }
    }
    ++line;
  }
  if (out.lines == 0) out.last_line = first_line - 1;
  return out;
}

}  // namespace gojodb::kv
