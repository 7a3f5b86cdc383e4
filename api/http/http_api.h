// The HTTP/JSON API of API.md as a pure request -> response function over a
// KvService. The socket server (http_server.h) only moves bytes; everything a client
// can observe is decided here, so it is tested without sockets.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/kv/kv_service.h"
#include "internal/metrics.h"

namespace gojodb::http {

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

// The one mapping from Status to HTTP status (docs/api/errors.md).
int HttpStatusFor(const Status& s);
// {"error":{"code":"NOT_FOUND","message":"…", <details>}} with Retry-After for 429/503.
HttpResponse ErrorResponse(const Status& s);

class HttpApi {
 public:
  // JSON text for GET /v1/cluster/status.
  using ClusterStatusFn = std::function<std::string()>;
  // Pointers are not owned and must outlive the HttpApi. Thread-safe.
  HttpApi(kv::KvService* kv, Metrics* metrics, ClusterStatusFn cluster_status);

  HttpResponse Handle(std::string_view method, std::string_view target, std::string_view body);

 private:
  kv::KvService* const kv_;
  Metrics* const metrics_;
  const ClusterStatusFn cluster_status_;
};

}  // namespace gojodb::http
