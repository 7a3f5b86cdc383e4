// The HTTP/1.1 listener: moves bytes between sockets and a handler (HttpApi).
//
// A pool of `threads` workers serves connections: a worker reads a request (parsed by
// RequestReader, on Boost.Beast's parser), calls the handler on its own thread, and
// writes the answer with one system call, then waits briefly on the same connection for
// the next request. A connection that stays quiet longer is parked in an epoll set
// watched by one poller thread, which also accepts, so idle keep-alive connections hold
// no worker; one that becomes readable goes back to the workers. Bodies larger than
// max_body_bytes are refused with 413 before they are read.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "api/http/http_api.h"

namespace gojodb::http {

struct HttpServerOptions {
  size_t max_body_bytes = 64u << 20;
  // Workers: requests handled at once.
  int threads = 64;
  // A request must arrive whole within this long of its first byte (else 408), and a
  // client must take an answer's bytes within it.
  int read_timeout_s = 30;
  // A keep-alive connection idle this long is closed.
  int idle_timeout_s = 60;
  // How long a worker waits on a quiet connection before parking it.
  int park_after_ms = 20;
  // Connections open at once; more are answered 503 and closed.
  int max_connections = 10000;
};

// Answers one request: method, target (path and query), body, and a lookup of request
// headers by name ("" when absent).
using HeaderLookup = std::function<std::string(const std::string&)>;
using HttpHandler = std::function<HttpResponse(std::string_view, std::string_view, std::string_view,
                                               const HeaderLookup&)>;

struct HttpConnection;

class HttpServer {
 public:
  // `api` is not owned and must outlive the server.
  HttpServer(HttpApi* api, HttpServerOptions options);
  HttpServer(HttpHandler handler, HttpServerOptions options);
  ~HttpServer();

  // Binds `addr` (host:port; port 0 picks a free one) and serves on the worker and
  // poller threads. Once stopped, a server does not start again.
  Status Start(const std::string& addr);
  // The port listened on (useful after Start("127.0.0.1:0")); 0 when not listening.
  int port() const;
  // Stops accepting, answers the requests being handled, closes every connection and
  // joins. Idempotent.
  void Stop();

 private:
  void PollLoop();
  void WorkerLoop();
  void AcceptAll();
  void Serve(std::unique_ptr<HttpConnection> c);
  void Park(std::unique_ptr<HttpConnection> c);
  void Unpark(uint64_t id);
  void CloseIdle();
  void Close(std::unique_ptr<HttpConnection> c);
  void CloseFds();

  // After Stop(), a request still arriving gets this long to arrive whole.
  static constexpr std::chrono::milliseconds kStopGrace{1000};

  const HttpHandler handler_;
  const HttpServerOptions options_;
  int listen_fd_ = -1;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  std::mutex lifecycle_mu_;  // Start and Stop
  std::atomic<bool> stopping_{false};
  std::atomic<int64_t> stop_deadline_ns_{0};  // steady clock; set before stopping_
  bool accept_paused_ = false;                // poller thread only: out of descriptors
  std::chrono::steady_clock::time_point accept_resume_;
  std::atomic<int> open_{0};
  std::mutex mu_;
  std::condition_variable ready_cv_;
  std::deque<std::unique_ptr<HttpConnection>> ready_;           // guarded by mu_
  std::map<uint64_t, std::unique_ptr<HttpConnection>> parked_;  // guarded by mu_
  uint64_t next_id_ = 16;                                       // guarded by mu_
  std::thread poller_;
  std::vector<std::thread> workers_;
};

// Splits "host:port"; the port must be 1..65535 ("[::1]:80" works too).
Result<std::pair<std::string, int>> SplitHostPort(const std::string& addr);

}  // namespace gojodb::http
