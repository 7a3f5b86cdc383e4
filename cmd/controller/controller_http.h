// The controller's HTTP endpoints (API.md): /healthz, /readyz, /metrics,
// GET /v1/cluster/status and GET /v1/tso?count=N. A follower forwards the last two to
// the leader's HTTP address, so any member answers.
#pragma once

#include <string_view>

#include "api/http/http_api.h"
#include "core/controller/controller.h"
#include "internal/metrics.h"

namespace gojodb::server {

class ControllerHttp {
 public:
  // Pointers are not owned and must outlive this. Thread-safe.
  ControllerHttp(controller::Controller* c, replication::RaftNode* node, Metrics* metrics)
      : c_(c), node_(node), metrics_(metrics) {}

  http::HttpResponse Handle(std::string_view method, std::string_view target, std::string_view body,
                            bool forwarded);

  // The status document: {"mode":"cluster","controllers":[…],"leader":…,
  // "storage_nodes":[…],"shards":[…],…}. Leader only.
  Result<std::string> ClusterStatusJson();

 private:
  Result<http::HttpResponse> Serve(std::string_view method, std::string_view path,
                                   std::string_view query, std::string* op);
  // The leader's answer to the same request, when this member is not the leader.
  http::HttpResponse Forward(const Status& not_leader, std::string_view method,
                             std::string_view target);

  controller::Controller* const c_;
  replication::RaftNode* const node_;
  Metrics* const metrics_;
};

}  // namespace gojodb::server
