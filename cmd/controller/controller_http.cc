#include "cmd/controller/controller_http.h"

#include <httplib.h>

#include <nlohmann/json.hpp>

#include "api/http/codec.h"
#include "api/http/http_server.h"
#include "internal/encoding.h"
#include "internal/version.h"

namespace gojodb::server {

using json = nlohmann::json;
namespace ctl = gojodb::controller;

namespace {

constexpr uint64_t kMaxHttpTimestamps = 10000;

http::HttpResponse JsonResponse(int status, const json& j) {
  http::HttpResponse r;
  r.status = status;
  r.body = j.dump() + "\n";
  return r;
}

// A key as JSON: its text when it is UTF-8, else {"base64": …}.
json KeyJson(const std::string& key) {
  if (IsValidUtf8(key)) return key;
  return json{{"base64", Base64Encode(key)}};
}

}  // namespace

Result<std::string> ControllerHttp::ClusterStatusJson() {
  ASSIGN_OR_RETURN(auto view, c_->View());
  json controllers = json::array();
  for (const auto& m : view.controllers) {
    controllers.push_back({{"id", m.member.id},
                           {"address", m.member.grpc_addr},
                           {"http_address", m.member.http_addr},
                           {"role", m.role},
                           {"state", m.reachable ? "up" : "unreachable"}});
  }
  json nodes = json::array();
  for (const auto& n : view.nodes) {
    json labels = n.record.labels;
    nodes.push_back({{"id", n.record.id},
                     {"address", n.record.grpc_addr},
                     {"http_address", n.record.http_addr},
                     {"state", ctl::LivenessName(n.liveness)},
                     {"admin_state", ctl::AdminStateName(n.record.admin)},
                     {"labels", labels},
                     {"capacity_bytes",
                      n.stats.capacity_bytes ? n.stats.capacity_bytes : n.record.capacity_bytes},
                     {"used_bytes", n.stats.used_bytes},
                     {"shard_count", n.stats.shard_count},
                     {"leader_count", n.stats.leader_count}});
  }
  json shards = json::array();
  for (const auto& s : view.shards) {
    json replicas = json::array(), learners = json::array();
    for (const auto& r : s.replicas) (r.learner ? learners : replicas).push_back(r.node);
    shards.push_back({{"id", s.id},
                      {"range", {KeyJson(s.start_key), KeyJson(s.end_key)}},
                      {"replicas", replicas},
                      {"learners", learners},
                      {"leader", s.leader},
                      {"epoch", {{"conf_ver", s.epoch.conf_ver}, {"version", s.epoch.version}}}});
  }
  json j = {{"mode", "cluster"},          {"version", kVersion},
            {"controllers", controllers}, {"leader", view.leader},
            {"term", view.term},          {"storage_nodes", nodes},
            {"shards", shards},           {"map_version", view.map_version}};
  ASSIGN_OR_RETURN(auto gc, c_->Gc());
  j["gc"] = {{"safe_point", gc.safe_point},
             {"target", gc.target},
             {"reclaim_pending", gc.reclaim_pending}};
  return j.dump() + "\n";
}

Result<http::HttpResponse> ControllerHttp::Serve(std::string_view method, std::string_view path,
                                                 std::string_view query, std::string* op) {
  auto only_get = [&]() -> Status {
    if (method == "GET") return Status::OK();
    return Status::Unimplemented("method " + std::string(method) + " is not allowed here")
        .WithDetail("reason", "METHOD_NOT_ALLOWED")
        .WithDetail("allow", "GET");
  };
  if (path == "/healthz") {
    *op = "healthz";
    RETURN_IF_ERROR(only_get());
    return JsonResponse(200, {{"status", "ok"}});
  }
  if (path == "/readyz") {
    *op = "readyz";
    RETURN_IF_ERROR(only_get());
    auto st = node_->GetStatus();
    if (st.leader.none()) return Status::Unavailable("no controller leader is known yet");
    return JsonResponse(200, {{"status", "ready"}, {"leader", st.leader.value()}});
  }
  if (path == "/metrics") {
    *op = "metrics";
    RETURN_IF_ERROR(only_get());
    http::HttpResponse r;
    r.content_type = "text/plain; version=0.0.4";
    r.body = metrics_->Render();
    return r;
  }
  if (path == "/v1/cluster/status") {
    *op = "cluster_status";
    RETURN_IF_ERROR(only_get());
    ASSIGN_OR_RETURN(std::string body, ClusterStatusJson());
    http::HttpResponse r;
    r.body = std::move(body);
    return r;
  }
  if (path == "/v1/tso") {
    *op = "tso";
    RETURN_IF_ERROR(only_get());
    ASSIGN_OR_RETURN(auto q, http::ParseQuery(query));
    uint64_t count = 1;
    if (auto it = q.find("count"); it != q.end()) {
      ASSIGN_OR_RETURN(count, http::ParseUint64(it->second, "count"));
    }
    if (count == 0 || count > kMaxHttpTimestamps) {
      return Status::InvalidArgument("count must be between 1 and " +
                                     std::to_string(kMaxHttpTimestamps));
    }
    ASSIGN_OR_RETURN(uint64_t first, c_->AllocateTimestamps(static_cast<uint32_t>(count)));
    json ts = json::array();
    for (uint64_t i = 0; i < count; ++i) ts.push_back(first + i);
    return JsonResponse(200, {{"timestamps", ts}});
  }
  return Status::NotFound("no such endpoint: " + std::string(path));
}

http::HttpResponse ControllerHttp::Handle(std::string_view method, std::string_view target,
                                          std::string_view, bool forwarded) {
  const auto start = std::chrono::steady_clock::now();
  const size_t qpos = target.find('?');
  const std::string_view path = target.substr(0, qpos);
  const std::string_view query =
      qpos == std::string_view::npos ? std::string_view() : target.substr(qpos + 1);
  std::string op = "unknown";
  auto r = Serve(method, path, query, &op);
  http::HttpResponse resp;
  std::string code = "OK";
  if (r.ok()) {
    resp = std::move(r).value();
  } else if (!forwarded && ctl::Controller::LeaderHint(r.status()) != 0) {
    resp = Forward(r.status(), method, target);
    code = "FORWARDED";
  } else {
    resp = http::ErrorResponse(r.status());
    code = std::string(StatusCodeName(r.status().code()));
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  metrics_->RecordRequest("http", op, code, secs);
  return resp;
}

http::HttpResponse ControllerHttp::Forward(const Status& not_leader, std::string_view method,
                                           std::string_view target) {
  const uint64_t leader = ctl::Controller::LeaderHint(not_leader);
  const auto st = c_->State();
  auto it = st.members.find(leader);
  if (it == st.members.end() || it->second.http_addr.empty()) {
    return http::ErrorResponse(not_leader);
  }
  auto hp = http::SplitHostPort(it->second.http_addr);
  if (!hp.ok()) return http::ErrorResponse(not_leader);
  httplib::Client cli(hp->first, hp->second);
  cli.set_connection_timeout(2, 0);
  cli.set_read_timeout(15, 0);
  httplib::Headers headers{{"X-GojoDB-Forwarded", "1"}};
  auto res = method == "GET" ? cli.Get(std::string(target), headers)
                             : httplib::Result(nullptr, httplib::Error::Unknown);
  if (!res) {
    return http::ErrorResponse(
        Status::Unavailable("the controller leader (" + it->second.http_addr + ") did not answer")
            .WithDetail("leader_id", std::to_string(leader)));
  }
  http::HttpResponse r;
  r.status = res->status;
  r.body = res->body;
  r.content_type = res->get_header_value("Content-Type");
  if (res->has_header("Retry-After")) r.headers.emplace_back("Retry-After", "1");
  return r;
}

}  // namespace gojodb::server
