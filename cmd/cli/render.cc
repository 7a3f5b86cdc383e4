#include "cmd/cli/render.h"

#include <nlohmann/json.hpp>

#include "cmd/cli/format.h"

namespace gojodb::cli {
namespace {

using nlohmann::json;

std::string Line(const json& doc) { return DumpJson(doc) + "\n"; }

std::string IndexText(const kv::IndexSpec& index) {
  std::string out = index.name + "(";
  for (size_t i = 0; i < index.fields.size(); ++i) {
    if (i > 0) out += ",";
    out += index.fields[i];
  }
  out += ")";
  if (index.unique) out += " unique";
  if (!index.state.empty() && index.state != kv::kIndexPublic) out += " [" + index.state + "]";
  if (!index.error.empty()) out += ": " + index.error;
  return out;
}

json CollectionJson(const kv::CollectionInfo& info) {
  json doc = {{"name", info.name}, {"id", info.id}, {"created_at", info.created_at}};
  if (info.schema_json.empty()) {
    doc["schema"] = nullptr;
  } else {
    SetBytesField(doc, "schema", info.schema_json, /*parse_json=*/true);
  }
  doc["indexes"] = json::array();
  for (const auto& index : info.indexes) {
    doc["indexes"].push_back({{"name", index.name},
                              {"fields", index.fields},
                              {"unique", index.unique},
                              {"state", index.state.empty() ? kv::kIndexPublic : index.state}});
    if (!index.error.empty()) doc["indexes"].back()["error"] = index.error;
  }
  return doc;
}

json NodeJson(const v1::NodeStatus& n) {
  return {{"id", n.id()},
          {"role", n.role()},
          {"grpc_addr", n.grpc_addr()},
          {"http_addr", n.http_addr()},
          {"state", n.state()}};
}

std::vector<std::string> NodeRow(const v1::NodeStatus& n) {
  return {std::to_string(n.id()), n.role(), n.grpc_addr(), n.http_addr(), n.state()};
}

std::string JoinIds(const google::protobuf::RepeatedField<uint64_t>& ids) {
  std::string out;
  for (uint64_t id : ids) {
    if (!out.empty()) out += ",";
    out += std::to_string(id);
  }
  return out;
}

}  // namespace

std::string RenderPut(OutputMode mode, const std::string& key, const kv::WriteResult& r) {
  if (mode == OutputMode::kJson) {
    json doc = json::object();
    SetBytesField(doc, "key", key, /*parse_json=*/false);
    doc["version"] = r.version;
    return Line(doc);
  }
  return "OK version=" + std::to_string(r.version) + "\n";
}

std::string RenderDelete(OutputMode mode, const std::string& key, const kv::WriteResult& r) {
  if (mode == OutputMode::kJson) {
    json doc = json::object();
    SetBytesField(doc, "key", key, /*parse_json=*/false);
    doc["version"] = r.version;
    doc["existed"] = r.existed;
    return Line(doc);
  }
  std::string out = "OK version=" + std::to_string(r.version);
  if (!r.existed) out += " (the key did not exist)";
  return out + "\n";
}

std::string RenderGet(OutputMode mode, const std::string& key, const kv::GetResult& r,
                      bool escape_unprintable) {
  if (mode == OutputMode::kJson) {
    json doc = json::object();
    SetBytesField(doc, "key", key, /*parse_json=*/false);
    SetBytesField(doc, "value", r.value, /*parse_json=*/true);
    doc["version"] = r.version;
    return Line(doc);
  }
  if (escape_unprintable && !IsPrintableText(r.value)) return EscapeForDisplay(r.value) + "\n";
  return r.value + "\n";
}

json ItemsJson(const std::vector<kv::KeyValue>& items) {
  json out = json::array();
  for (const auto& item : items) {
    json row = json::object();
    SetBytesField(row, "key", item.key, /*parse_json=*/false);
    SetBytesField(row, "value", item.value, /*parse_json=*/true);
    row["version"] = item.version;
    out.push_back(std::move(row));
  }
  return out;
}

std::vector<std::vector<std::string>> ItemRows(const std::vector<kv::KeyValue>& items) {
  std::vector<std::vector<std::string>> rows;
  rows.reserve(items.size());
  for (const auto& item : items) {
    rows.push_back(
        {EscapeForDisplay(item.key), std::to_string(item.version), EscapeForDisplay(item.value)});
  }
  return rows;
}

std::string RenderScan(OutputMode mode, const kv::ScanResult& r, bool reverse) {
  if (mode == OutputMode::kJson) {
    json doc = {{"items", ItemsJson(r.items)}};
    if (r.next) {
      SetBytesField(doc, "next", *r.next, /*parse_json=*/false);
    } else {
      doc["next"] = nullptr;
    }
    doc["read_ts"] = r.read_ts;
    return Line(doc);
  }
  std::string out = RenderTable({"KEY", "VERSION", "VALUE"}, ItemRows(r.items));
  const size_t n = r.items.size();
  out += "(" + std::to_string(n) + (n == 1 ? " row" : " rows");
  if (r.next) {
    out += reverse ? "; more before \"" + EscapeForDisplay(*r.next) + "\": pass it as END"
                   : "; more from \"" + EscapeForDisplay(*r.next) + "\": pass it as START";
    out += ", or use --all";
  }
  return out + ")\n";
}

std::string RenderCollectionList(OutputMode mode, const std::vector<kv::CollectionInfo>& list) {
  if (mode == OutputMode::kJson) {
    json doc = {{"collections", json::array()}};
    for (const auto& info : list) doc["collections"].push_back(CollectionJson(info));
    return Line(doc);
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& info : list) {
    std::string indexes;
    for (const auto& index : info.indexes) {
      if (!indexes.empty()) indexes += ", ";
      indexes += IndexText(index);
    }
    rows.push_back({EscapeForDisplay(info.name), std::to_string(info.id),
                    std::to_string(info.created_at), info.schema_json.empty() ? "no" : "yes",
                    EscapeForDisplay(indexes)});
  }
  return RenderTable({"NAME", "ID", "CREATED_AT", "SCHEMA", "INDEXES"}, rows);
}

std::string RenderCollection(OutputMode mode, const kv::CollectionInfo& info) {
  if (mode == OutputMode::kJson) return Line(CollectionJson(info));
  std::vector<std::vector<std::string>> rows = {
      {"name:", EscapeForDisplay(info.name)},
      {"id:", std::to_string(info.id)},
      {"created_at:", std::to_string(info.created_at)},
      {"schema:", info.schema_json.empty() ? "(none)" : EscapeForDisplay(info.schema_json)},
  };
  if (info.indexes.empty()) rows.push_back({"indexes:", "(none)"});
  for (size_t i = 0; i < info.indexes.size(); ++i) {
    rows.push_back({i == 0 ? "indexes:" : "", EscapeForDisplay(IndexText(info.indexes[i]))});
  }
  // A two-column table without a header line.
  std::string table = RenderTable({"", ""}, rows);
  return table.substr(table.find('\n') + 1);
}

std::string RenderDropped(OutputMode mode, const std::string& name) {
  if (mode == OutputMode::kJson) return Line({{"dropped", name}});
  return "dropped collection '" + EscapeForDisplay(name) + "'\n";
}

std::string RenderClusterStatus(OutputMode mode, const v1::ClusterStatusResponse& s) {
  if (mode == OutputMode::kJson) {
    json doc = {{"mode", s.mode()},
                {"version", s.version()},
                {"leader", s.leader()},
                {"controllers", json::array()},
                {"storage_nodes", json::array()},
                {"shards", json::array()}};
    for (const auto& n : s.controllers()) doc["controllers"].push_back(NodeJson(n));
    for (const auto& n : s.storage_nodes()) doc["storage_nodes"].push_back(NodeJson(n));
    for (const auto& sh : s.shards()) {
      json row = {{"id", sh.id()}};
      SetBytesField(row, "start_key", sh.start_key(), /*parse_json=*/false);
      SetBytesField(row, "end_key", sh.end_key(), /*parse_json=*/false);
      row["replicas"] = std::vector<uint64_t>(sh.replicas().begin(), sh.replicas().end());
      row["leader"] = sh.leader();
      doc["shards"].push_back(std::move(row));
    }
    doc["gc"] = {{"safe_point", s.gc_safe_point()},
                 {"target", s.gc_target()},
                 {"reclaim_pending", s.gc_reclaim_pending()}};
    return Line(doc);
  }
  std::string out = "mode:    " + s.mode() + "\n";
  out += "version: " + (s.version().empty() ? std::string("(unknown)") : s.version()) + "\n";
  out +=
      "leader:  " + (s.leader() == 0 ? std::string("(none)") : std::to_string(s.leader())) + "\n";
  if (s.gc_safe_point() != 0 || s.gc_target() != 0) {
    out += "gc:      safe point " + std::to_string(s.gc_safe_point()) + ", target " +
           std::to_string(s.gc_target());
    if (s.gc_reclaim_pending() != 0) {
      out += ", " + std::to_string(s.gc_reclaim_pending()) +
             " dropped collections or indexes to delete";
    }
    out += "\n";
  }
  const std::vector<std::string> node_header = {"ID", "ROLE", "GRPC", "HTTP", "STATE"};
  if (s.controllers_size() > 0) {
    std::vector<std::vector<std::string>> rows;
    for (const auto& n : s.controllers()) rows.push_back(NodeRow(n));
    out += "\ncontrollers:\n" + RenderTable(node_header, rows);
  }
  if (s.storage_nodes_size() > 0) {
    std::vector<std::vector<std::string>> rows;
    for (const auto& n : s.storage_nodes()) rows.push_back(NodeRow(n));
    out += "\nstorage nodes:\n" + RenderTable(node_header, rows);
  }
  if (s.shards_size() > 0) {
    std::vector<std::vector<std::string>> rows;
    for (const auto& sh : s.shards()) {
      rows.push_back({std::to_string(sh.id()),
                      sh.start_key().empty() ? "-inf" : EscapeForDisplay(sh.start_key()),
                      sh.end_key().empty() ? "+inf" : EscapeForDisplay(sh.end_key()),
                      JoinIds(sh.replicas()), std::to_string(sh.leader())});
    }
    out += "\nshards:\n" + RenderTable({"ID", "START", "END", "REPLICAS", "LEADER"}, rows);
  }
  return out;
}

std::string RenderVersion(OutputMode mode, const std::string& client_version,
                          const std::string& server_version, const std::string& server_mode) {
  if (mode == OutputMode::kJson) {
    json doc = {{"client", client_version}};
    if (!server_version.empty())
      doc["server"] = {{"version", server_version}, {"mode", server_mode}};
    return Line(doc);
  }
  std::string out = "client: gojodb " + client_version + "\n";
  if (!server_version.empty()) {
    out += "server: gojodb " + server_version;
    if (!server_mode.empty()) out += " (" + server_mode + ")";
    out += "\n";
  }
  return out;
}

}  // namespace gojodb::cli
