#include "core/kv/csv.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "internal/json_value.h"

namespace gojodb::kv {
namespace {

using nlohmann::json;

// A JSON number as written by a person or by json::dump: -?(0|[1-9]d*)(.d+)?([eE][+-]?d+)?
bool IsJsonNumber(std::string_view s) {
  size_t i = 0;
  auto digits = [&] {
    size_t start = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    return i > start;
  };
  if (i < s.size() && s[i] == '-') ++i;
  if (i < s.size() && s[i] == '0') {
    ++i;
  } else if (!digits()) {
    return false;
  }
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (!digits()) return false;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    if (!digits()) return false;
  }
  return i == s.size();
}

Status Refusal(const char* reason, std::string message) {
  return Status::InvalidArgument(std::move(message)).WithDetail("reason", reason);
}

}  // namespace

CsvDecoder::CsvDecoder(CsvOptions options) : options_(std::move(options)) {}

Status CsvDecoder::Feed(std::string_view text, NdjsonRecords* out) {
  if (!broken_.ok()) return broken_;
  buf_.append(text);
  return Drain(false, out);
}

Status CsvDecoder::Finish(NdjsonRecords* out) {
  if (!broken_.ok()) return broken_;
  return Drain(true, out);
}

Status CsvDecoder::Drain(bool at_end, NdjsonRecords* out) {
  size_t pos = 0;  // the start of the row being read
  while (pos < buf_.size()) {
    // One row: fields until an unquoted line break, or the end of the buffer.
    std::vector<std::pair<std::string, bool>> fields;  // text, quoted
    std::string field;
    bool quoted = false, in_quotes = false, after_quote = false, bad = false;
    uint64_t breaks = 0;  // line breaks inside the row (in quotes)
    size_t i = pos;
    bool complete = false;
    for (; i < buf_.size(); ++i) {
      const char c = buf_[i];
      if (in_quotes) {
        if (c == '"') {
          if (i + 1 == buf_.size() && !at_end) break;  // "" or a closing quote: wait
          if (i + 1 < buf_.size() && buf_[i + 1] == '"') {
            field += '"';
            ++i;
          } else {
            in_quotes = false;
            after_quote = true;
          }
        } else {
          if (c == '\n') ++breaks;
          field += c;
        }
        continue;
      }
      if (c == ',') {
        fields.emplace_back(std::move(field), quoted);
        field.clear();
        quoted = after_quote = false;
      } else if (c == '\n' || c == '\r') {
        if (c == '\r') {
          if (i + 1 == buf_.size() && !at_end) break;  // CR LF split across calls
          if (i + 1 < buf_.size() && buf_[i + 1] == '\n') ++i;
        }
        complete = true;
        ++i;
        break;
      } else if (c == '"') {
        if (field.empty() && !quoted) {
          quoted = in_quotes = true;
        } else {
          bad = true;  // a quote inside a bare field, or a second quoted part
          field += c;
        }
      } else {
        if (after_quote) bad = true;  // text after a closing quote
        field += c;
      }
    }
    if (!complete) {
      if (!at_end) break;  // the row goes on in the next Feed
      i = buf_.size();
      if (in_quotes) bad = true;
    }
    fields.emplace_back(std::move(field), quoted);
    const uint64_t line = next_line_;
    next_line_ += 1 + breaks;
    pos = i;
    const bool blank = fields.size() == 1 && fields[0].first.empty() && !fields[0].second;
    if (bad) {
      if (header_.empty()) {
        broken_ = Status::InvalidArgument("the CSV header (line " + std::to_string(line) +
                                          ") is not valid CSV");
        return broken_;
      }
      out->errors.push_back(
          {line, Refusal("NOT_CSV", "not valid CSV: a stray or unterminated quote")});
    } else if (!blank) {  // a blank line holds nothing, as in NDJSON
      RETURN_IF_ERROR(Row(line, std::move(fields), out));
    }
    ++out->lines;
    out->lines += breaks;
    out->last_line = line + breaks;
  }
  buf_.erase(0, pos);
  return Status::OK();
}

Status CsvDecoder::Row(uint64_t line, std::vector<std::pair<std::string, bool>> fields,
                       NdjsonRecords* out) {
  if (header_.empty()) {
    std::set<std::string> seen;
    for (const auto& [name, quoted] : fields) {
      if (name.empty()) {
        broken_ = Status::InvalidArgument("the CSV header has an empty column name");
      } else if (!seen.insert(name).second) {
        broken_ =
            Status::InvalidArgument("the CSV header names '" + name.substr(0, 64) + "' twice");
      }
      if (!broken_.ok()) return broken_;
      header_.push_back(name);
    }
    auto k = std::find(header_.begin(), header_.end(), options_.key_field);
    if (k == header_.end()) {
      broken_ = Status::InvalidArgument("the CSV header has no key column '" +
                                        options_.key_field.substr(0, 64) +
                                        "' (name another with the key field option)");
      header_.clear();
      return broken_;
    }
    key_column_ = static_cast<size_t>(k - header_.begin());
    return Status::OK();
  }
  if (fields.size() != header_.size()) {
    out->errors.push_back(
        {line, Refusal("CSV_FIELDS", "the row has " + std::to_string(fields.size()) +
                                         " fields, the header " + std::to_string(header_.size()))});
    return Status::OK();
  }
  if (fields[key_column_].first.empty()) {
    out->errors.push_back(
        {line, Refusal("NO_KEY", "the row's '" + options_.key_field.substr(0, 64) + "' is empty")});
    return Status::OK();
  }
  json doc = json::object();
  for (size_t c = 0; c < fields.size(); ++c) {
    auto& [text, quoted] = fields[c];
    if (quoted || options_.strings_only) {
      doc[header_[c]] = text;
    } else if (text.empty()) {
      continue;  // absent
    } else if (text == "true" || text == "false") {
      doc[header_[c]] = text == "true";
    } else if (text == "null") {
      doc[header_[c]] = nullptr;
    } else if (IsJsonNumber(text)) {
      json n = ParseJson(text);
      doc[header_[c]] = n.is_discarded() ? json(text) : n;
    } else {
      doc[header_[c]] = text;
    }
  }
  // Invalid UTF-8 cannot be a JSON string: the whole row is refused.
  std::string value;
  try {
    value = doc.dump();
  } catch (const json::exception&) {
    out->errors.push_back({line, Refusal("NOT_CSV", "a field is not valid UTF-8")});
    return Status::OK();
  }
  out->records.push_back({line, std::move(fields[key_column_].first), std::move(value)});
  return Status::OK();
}

std::string CsvText(std::string_view text) {
  bool needs = text.empty();
  for (char c : text) needs = needs || c == ',' || c == '"' || c == '\n' || c == '\r';
  if (!needs) return std::string(text);
  std::string out = "\"";
  for (char c : text) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string CsvField(std::string_view json_value) {
  json v = ParseJson(json_value);
  if (v.is_discarded()) return CsvText(json_value);
  if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    std::string out = "\"";
    for (char c : s) {
      if (c == '"') out += '"';
      out += c;
    }
    return out + "\"";
  }
  if (v.is_object() || v.is_array()) return CsvField(json(v.dump()).dump());
  return v.dump();  // numbers, booleans, null
}

}  // namespace gojodb::kv
