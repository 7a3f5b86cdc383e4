#include "api/http/http_server.h"

#include <httplib.h>
#include <sys/socket.h>

#include "api/http/codec.h"

namespace gojodb::http {
namespace {

Status StatusForHttp(int code) {
  switch (code) {
    case 400:
      return Status::InvalidArgument("malformed HTTP request");
    case 404:
      return Status::NotFound("no such endpoint");
    case 405:
      return Status::Unimplemented("method not allowed");
    case 413:
      return Status::ResourceExhausted("request body is larger than the server accepts")
          .WithDetail("reason", "TOO_LARGE");
    case 414:
      return Status::InvalidArgument("request URI is too long");
    default:
      return Status::Internal("HTTP error " + std::to_string(code));
  }
}

}  // namespace

Result<std::pair<std::string, int>> SplitHostPort(const std::string& addr) {
  size_t colon = addr.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return Status::InvalidArgument("address '" + addr + "' is not host:port");
  }
  std::string host = addr.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  auto port = ParseUint64(addr.substr(colon + 1), "port");
  if (!port.ok() || *port == 0 || *port > 65535) {
    return Status::InvalidArgument("address '" + addr + "' has no valid port");
  }
  return std::make_pair(host, static_cast<int>(*port));
}

HttpServer::HttpServer(HttpApi* api, HttpServerOptions options)
    : HttpServer([api](std::string_view m, std::string_view t, std::string_view b,
                       const HeaderLookup&) { return api->Handle(m, t, b); },
                 options) {}

HttpServer::HttpServer(HttpHandler handler, HttpServerOptions options)
    : handler_(std::move(handler)),
      options_(options),
      server_(std::make_unique<httplib::Server>()) {}

HttpServer::~HttpServer() { Stop(); }

Status HttpServer::Start(const std::string& addr) {
  ASSIGN_OR_RETURN(auto hp, SplitHostPort(addr));
  auto& s = *server_;
  const int threads = options_.threads;
  s.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  s.set_payload_max_length(options_.max_body_bytes);
  s.set_read_timeout(options_.read_timeout_s, 0);
  s.set_keep_alive_max_count(10000);
  // A response goes out as headers, then body: with Nagle's algorithm the body waits for
  // the client's ACK of the headers, which a client with delayed ACKs holds ~40 ms.
  s.set_tcp_nodelay(true);
  // Also bounds shutdown: Stop() waits for idle keep-alive connections this long.
  s.set_keep_alive_timeout(2);
  auto handler = [this](const httplib::Request& req, httplib::Response& res) {
    HttpResponse r = handler_(req.method, req.target, req.body, [&req](const std::string& name) {
      return req.get_header_value(name);
    });
    res.status = r.status;
    for (auto& [k, v] : r.headers) res.set_header(k, v);
    res.set_content(std::move(r.body), r.content_type);
  };
  s.Get(".*", handler);
  s.Put(".*", handler);
  s.Post(".*", handler);
  s.Delete(".*", handler);
  s.Patch(".*", handler);
  s.Options(".*", handler);
  // httplib's own refusals (malformed request, body too large) get our error body too.
  s.set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request& req,
                                                              httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    Status status = StatusForHttp(res.status);
    if (res.status == 413 &&
        req.get_header_value("Content-Type").rfind("application/x-www-form-urlencoded", 0) == 0) {
      // httplib caps form bodies at 8 KiB, and curl -d sends a form unless told not to.
      status = Status::ResourceExhausted(
                   "a body sent as a form (Content-Type: application/x-www-form-urlencoded, "
                   "curl's default for -d and --data-binary) may take at most 8 KiB: send "
                   "Content-Type: application/json, or application/x-ndjson for a bulk load")
                   .WithDetail("reason", "TOO_LARGE");
    }
    HttpResponse r = ErrorResponse(status);
    res.set_content(r.body, r.content_type);
    return httplib::Server::HandlerResponse::Handled;
  }));
  // SO_REUSEADDR only: httplib's default adds SO_REUSEPORT, with which a second process
  // given the same address binds it too and the kernel splits connections between them.
  s.set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  if (!s.bind_to_port(hp.first, hp.second)) {
    return Status::Unavailable("cannot listen on " + addr + " (address in use or not local?)");
  }
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  return Status::OK();
}

void HttpServer::Stop() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace gojodb::http
