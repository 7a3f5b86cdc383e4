#include "api/gateway/cluster_status.h"

#include <nlohmann/json.hpp>

#include "internal/encoding.h"
#include "internal/version.h"

namespace gojodb::gateway {

namespace {

nlohmann::json KeyJson(const std::string& key) {
  if (IsValidUtf8(key)) return key;
  return nlohmann::json{{"base64", Base64Encode(key)}};
}

}  // namespace

v1::ClusterStatusResponse ClusterStatusProto(ClusterKv* kv, const std::string& mode) {
  auto r = kv->ClusterStatus();
  v1::ClusterStatusResponse out;
  if (r.ok()) out = std::move(r).value();
  out.set_mode(mode);
  out.set_version(kVersion);
  return out;
}

std::string ClusterStatusJson(ClusterKv* kv, const std::string& mode) {
  auto r = kv->ClusterStatus();
  if (!r.ok()) {
    return nlohmann::json{
               {"mode", mode},
               {"version", kVersion},
               {"error",
                {{"code", StatusCodeName(r.status().code())}, {"message", r.status().message()}}}}
               .dump() +
           "\n";
  }
  nlohmann::json controllers = nlohmann::json::array(), nodes = nlohmann::json::array(),
                 shards = nlohmann::json::array();
  for (const auto& c : r->controllers()) {
    controllers.push_back({{"id", c.id()},
                           {"address", c.grpc_addr()},
                           {"http_address", c.http_addr()},
                           {"role", c.role()},
                           {"state", c.state()}});
  }
  for (const auto& n : r->storage_nodes()) {
    nodes.push_back({{"id", n.id()},
                     {"address", n.grpc_addr()},
                     {"http_address", n.http_addr()},
                     {"state", n.state()},
                     {"admin_state", n.role()}});
  }
  for (const auto& s : r->shards()) {
    nlohmann::json replicas = nlohmann::json::array();
    for (uint64_t id : s.replicas()) replicas.push_back(id);
    shards.push_back({{"id", s.id()},
                      {"range", {KeyJson(s.start_key()), KeyJson(s.end_key())}},
                      {"replicas", replicas},
                      {"leader", s.leader()}});
  }
  nlohmann::json j = {{"mode", mode},
                      {"version", kVersion},
                      {"controllers", controllers},
                      {"leader", r->leader()},
                      {"storage_nodes", nodes},
                      {"shards", shards},
                      {"gc",
                       {{"safe_point", r->gc_safe_point()},
                        {"target", r->gc_target()},
                        {"reclaim_pending", r->gc_reclaim_pending()}}}};
  return j.dump() + "\n";
}

}  // namespace gojodb::gateway
