// The HTTP listener: moves bytes between sockets and HttpApi. Bodies larger than
// max_body_bytes are refused with 413 before they are read into memory.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "api/http/http_api.h"

namespace httplib {
class Server;
}

namespace gojodb::http {

struct HttpServerOptions {
  size_t max_body_bytes = 64u << 20;
  int threads = 64;
  int read_timeout_s = 30;
};

// Answers one request: method, target (path and query), body, and a lookup of request
// headers by name ("" when absent).
using HeaderLookup = std::function<std::string(const std::string&)>;
using HttpHandler = std::function<HttpResponse(std::string_view, std::string_view, std::string_view,
                                               const HeaderLookup&)>;

class HttpServer {
 public:
  // `api` is not owned and must outlive the server.
  HttpServer(HttpApi* api, HttpServerOptions options);
  HttpServer(HttpHandler handler, HttpServerOptions options);
  ~HttpServer();

  // Binds `addr` (host:port) and serves on a background thread.
  Status Start(const std::string& addr);
  // Stops accepting, finishes in-flight requests, joins. Idempotent.
  void Stop();

 private:
  const HttpHandler handler_;
  const HttpServerOptions options_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
};

// Splits "host:port"; the port must be 1..65535 ("[::1]:80" works too).
Result<std::pair<std::string, int>> SplitHostPort(const std::string& addr);

}  // namespace gojodb::http
