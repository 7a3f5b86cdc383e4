#include "cmd/cli/render_admin.h"

#include <cstdio>
#include <iterator>
#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

#include "cmd/cli/format.h"

namespace gojodb::cli {
namespace {

using nlohmann::json;

std::string Line(const json& doc) { return DumpJson(doc) + "\n"; }

// The capacity the node reports in its heartbeats, else the one it registered with.
uint64_t Capacity(const v1::NodeInfo& n) {
  return n.stats().capacity_bytes() != 0 ? n.stats().capacity_bytes() : n.node().capacity_bytes();
}

std::string Zone(const v1::NodeDescriptor& d) {
  auto it = d.labels().find("zone");
  return it == d.labels().end() ? "" : it->second;
}

json NodeInfoJson(const v1::NodeInfo& n) {
  json labels = json::object();
  for (const auto& [name, value] : n.node().labels()) labels[name] = value;
  return {{"id", n.node().id()},
          {"grpc_addr", n.node().grpc_addr()},
          {"http_addr", n.node().http_addr()},
          {"liveness", n.liveness()},
          {"admin_state", n.node().admin_state()},
          {"labels", std::move(labels)},
          {"shard_count", n.stats().shard_count()},
          {"leader_count", n.stats().leader_count()},
          {"used_bytes", n.stats().used_bytes()},
          {"capacity_bytes", Capacity(n)},
          {"load", n.stats().load()},
          {"last_heartbeat_ms", n.last_heartbeat_ms()}};
}

std::string ReplicasCell(const v1::ShardDescriptor& sh) {
  std::string out;
  for (const auto& r : sh.replicas()) {
    if (!out.empty()) out += ",";
    out += std::to_string(r.node());
    if (r.learner()) out += "(learner)";
  }
  return out;
}

json ShardJson(const v1::ShardDescriptor& sh) {
  json row = {{"id", sh.id()}};
  SetBytesField(row, "start_key", sh.start_key(), /*parse_json=*/false);
  SetBytesField(row, "end_key", sh.end_key(), /*parse_json=*/false);
  row["replicas"] = json::array();
  for (const auto& r : sh.replicas()) {
    row["replicas"].push_back({{"node", r.node()}, {"learner", r.learner()}});
  }
  row["leader"] = sh.leader();
  row["conf_ver"] = sh.conf_ver();
  row["version"] = sh.version();
  return row;
}

// The settings' integer fields in declaration order, by reflection so that a new
// setting shows up without a change here.
std::vector<std::pair<std::string, uint64_t>> SettingFields(const v1::Settings& s) {
  std::vector<std::pair<std::string, uint64_t>> out;
  const auto* desc = s.GetDescriptor();
  const auto* refl = s.GetReflection();
  for (int i = 0; i < desc->field_count(); ++i) {
    const auto* f = desc->field(i);
    if (f->is_repeated()) continue;
    switch (f->cpp_type()) {
      case google::protobuf::FieldDescriptor::CPPTYPE_UINT32:
        out.emplace_back(f->name(), refl->GetUInt32(s, f));
        break;
      case google::protobuf::FieldDescriptor::CPPTYPE_UINT64:
        out.emplace_back(f->name(), refl->GetUInt64(s, f));
        break;
      default:
        break;
    }
  }
  return out;
}

}  // namespace

std::string HumanBytes(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (bytes < 1024) return std::to_string(bytes) + " B";
  double v = static_cast<double>(bytes);
  size_t unit = 0;
  while (v >= 1024 && unit + 1 < std::size(kUnits)) {
    v /= 1024;
    ++unit;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f %s", v, kUnits[unit]);
  return buf;
}

std::string RenderNodeList(OutputMode mode, const v1::ListNodesResponse& r) {
  if (mode == OutputMode::kJson) {
    json doc = {{"nodes", json::array()}};
    for (const auto& n : r.nodes()) doc["nodes"].push_back(NodeInfoJson(n));
    return Line(doc);
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& n : r.nodes()) {
    rows.push_back({std::to_string(n.node().id()), EscapeForDisplay(n.node().grpc_addr()),
                    EscapeForDisplay(n.node().http_addr()), EscapeForDisplay(n.liveness()),
                    EscapeForDisplay(n.node().admin_state()), EscapeForDisplay(Zone(n.node())),
                    std::to_string(n.stats().shard_count()),
                    std::to_string(n.stats().leader_count()), HumanBytes(n.stats().used_bytes()),
                    HumanBytes(Capacity(n))});
  }
  return RenderTable(
      {"ID", "ADDRESS", "HTTP", "STATE", "ADMIN", "ZONE", "SHARDS", "LEADERS", "USED", "CAPACITY"},
      rows);
}

std::string RenderDecommissioned(OutputMode mode, uint64_t node_id) {
  if (mode == OutputMode::kJson) {
    return Line({{"node", node_id}, {"admin_state", "decommissioning"}});
  }
  return "node " + std::to_string(node_id) +
         " is decommissioning: its replicas move to other nodes\n";
}

std::string RenderShardMap(OutputMode mode, const v1::GetShardMapResponse& r) {
  if (mode == OutputMode::kJson) {
    json doc = {{"version", r.version()}, {"shards", json::array()}};
    for (const auto& sh : r.shards()) doc["shards"].push_back(ShardJson(sh));
    return Line(doc);
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& sh : r.shards()) {
    rows.push_back({std::to_string(sh.id()),
                    sh.start_key().empty() ? "(start)" : EscapeForDisplay(sh.start_key()),
                    sh.end_key().empty() ? "(end)" : EscapeForDisplay(sh.end_key()), ReplicasCell(sh),
                    sh.leader() == 0 ? "-" : std::to_string(sh.leader()),
                    std::to_string(sh.conf_ver()) + "." + std::to_string(sh.version())});
  }
  return RenderTable({"ID", "START", "END", "REPLICAS", "LEADER", "EPOCH"}, rows);
}

std::string RenderControllerAdded(OutputMode mode, uint64_t id, const std::string& grpc_addr) {
  if (mode == OutputMode::kJson) return Line({{"added_controller", id}, {"grpc_addr", grpc_addr}});
  return "added controller " + std::to_string(id) + " at " + EscapeForDisplay(grpc_addr) + "\n";
}

std::string RenderControllerRemoved(OutputMode mode, uint64_t id) {
  if (mode == OutputMode::kJson) return Line({{"removed_controller", id}});
  return "removed controller " + std::to_string(id) + "\n";
}

std::string RenderSettings(OutputMode mode, const v1::Settings& s) {
  const auto fields = SettingFields(s);
  if (mode == OutputMode::kJson) {
    json doc = json::object();
    for (const auto& [name, value] : fields) doc[name] = value;
    return Line(doc);
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& [name, value] : fields) rows.push_back({name, std::to_string(value)});
  return RenderTable({"NAME", "VALUE"}, rows);
}

std::string RenderTimestamps(OutputMode mode, const v1::GetTimestampsResponse& r) {
  if (mode == OutputMode::kJson) {
    json doc = {{"timestamps", json::array()}};
    for (uint32_t i = 0; i < r.count(); ++i) doc["timestamps"].push_back(r.first() + i);
    return Line(doc);
  }
  std::string out;
  for (uint32_t i = 0; i < r.count(); ++i) out += std::to_string(r.first() + i) + "\n";
  return out;
}

}  // namespace gojodb::cli
