// Rendering of the document commands: query, aggregate, import.
#include <nlohmann/json.hpp>

#include "cmd/cli/format.h"
#include "cmd/cli/render.h"

namespace gojodb::cli {
namespace {

using nlohmann::json;

// A JSON value as a table cell: strings without their quotes, the rest as JSON text.
std::string Cell(const json& v) { return v.is_string() ? v.get<std::string>() : DumpJson(v); }

json Parsed(const std::string& text) {
  json j = json::parse(text, nullptr, false);
  return j.is_discarded() ? json(text) : j;
}

}  // namespace

std::string RenderQuery(OutputMode mode, const kv::QueryResult& r) {
  if (mode == OutputMode::kJson) {
    json doc = {{"items", ItemsJson(r.items)}};
    doc["cursor"] = r.cursor.empty() ? json(nullptr) : json(r.cursor);
    doc["read_ts"] = r.read_ts;
    if (!r.plan_json.empty()) doc["plan"] = Parsed(r.plan_json);
    return DumpJson(doc) + "\n";
  }
  std::string out;
  if (!r.plan_json.empty()) out += "plan: " + DumpJson(Parsed(r.plan_json)) + "\n";
  out += RenderTable({"KEY", "VERSION", "DOCUMENT"}, ItemRows(r.items));
  const size_t n = r.items.size();
  out += "(" + std::to_string(n) + (n == 1 ? " document" : " documents");
  if (!r.cursor.empty()) out += "; more with --cursor " + r.cursor + ", or use --all";
  return out + ")\n";
}

std::string RenderAggregate(OutputMode mode, const kv::AggregateResult& r,
                            const std::vector<std::string>& group_by,
                            const std::vector<std::string>& names) {
  json groups = Parsed(r.groups_json);
  if (!groups.is_array()) groups = json::array();
  if (mode == OutputMode::kJson) {
    json doc = {{"groups", groups}, {"read_ts", r.read_ts}};
    if (!r.plan_json.empty()) doc["plan"] = Parsed(r.plan_json);
    return DumpJson(doc) + "\n";
  }
  std::string out;
  if (!r.plan_json.empty()) out += "plan: " + DumpJson(Parsed(r.plan_json)) + "\n";
  std::vector<std::string> header;
  for (const auto& f : group_by) header.push_back(f);
  for (const auto& n : names) header.push_back(n);
  std::vector<std::vector<std::string>> rows;
  for (const auto& g : groups) {
    std::vector<std::string> row;
    const json& key = g.contains("key") ? g["key"] : json::object();
    const json& values = g.contains("values") ? g["values"] : json::object();
    for (const auto& f : group_by) row.push_back(key.contains(f) ? Cell(key[f]) : "(missing)");
    for (const auto& n : names) row.push_back(values.contains(n) ? Cell(values[n]) : "null");
    rows.push_back(std::move(row));
  }
  out += RenderTable(header, rows);
  out += "(" + std::to_string(rows.size()) + (rows.size() == 1 ? " group)\n" : " groups)\n");
  return out;
}

std::string RenderImport(OutputMode mode, const std::string& source, const kv::IngestSummary& s,
                         size_t max_errors) {
  if (mode == OutputMode::kJson) {
    json errors = json::array();
    for (const auto& e : s.errors) {
      json err = {{"line", e.line},
                  {"code", std::string(StatusCodeName(e.status.code()))},
                  {"message", e.status.message()}};
      for (const auto& [k, v] : e.status.details()) err[k] = v;
      errors.push_back(std::move(err));
    }
    return DumpJson({{"source", source},
                     {"lines_done", s.lines_done},
                     {"written", s.written},
                     {"skipped", s.skipped},
                     {"failed", s.failed},
                     {"errors", errors}}) +
           "\n";
  }
  std::string out = "imported " + source + ": " + std::to_string(s.lines_done) + " lines, " +
                    std::to_string(s.written) + " written, " + std::to_string(s.skipped) +
                    " skipped, " + std::to_string(s.failed) + " failed\n";
  for (size_t i = 0; i < s.errors.size() && i < max_errors; ++i) {
    const auto& e = s.errors[i];
    std::string reason;
    for (const auto& [k, v] : e.status.details()) {
      if (k == "reason") reason = " (" + v + ")";
    }
    out += "  line " + std::to_string(e.line) + ": " +
           std::string(StatusCodeName(e.status.code())) + reason + ": " + e.status.message() + "\n";
  }
  if (s.failed > std::min<uint64_t>(s.errors.size(), max_errors)) {
    out += "  ... and " +
           std::to_string(s.failed - std::min<uint64_t>(s.errors.size(), max_errors)) +
           " more refused lines (-o json lists up to 1000)\n";
  }
  return out;
}

}  // namespace gojodb::cli
