#include "api/http/http_server.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "api/http/codec.h"
#include "api/http/request_reader.h"

namespace gojodb::http {

using Clock = std::chrono::steady_clock;

// One client connection. Owned by whoever works on it: a worker, the ready queue or the
// parked set.
struct HttpConnection {
  HttpConnection(int fd, uint64_t id, RequestLimits limits) : fd(fd), id(id), reader(limits) {}
  ~HttpConnection() {
    if (fd >= 0) ::close(fd);
  }
  int fd;
  uint64_t id;
  RequestReader reader;
  Clock::time_point request_start;  // the first byte of the request being read
  Clock::time_point parked_at;
};

namespace {

constexpr uint64_t kListenId = 1;
constexpr uint64_t kWakeId = 2;

const char* Reason(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 412:
      return "Precondition Failed";
    case 413:
      return "Payload Too Large";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 499:
      return "Client Closed Request";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "Status";
  }
}

// Sends every byte of the iovecs (MSG_NOSIGNAL: a closed peer is an error, not SIGPIPE),
// giving up at `deadline`: SO_SNDTIMEO bounds each call, not a client that takes a few
// bytes at a time.
bool SendAll(int fd, struct iovec* iov, int n, Clock::time_point deadline) {
  while (n > 0) {
    if (Clock::now() > deadline) return false;
    struct msghdr msg {};
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<size_t>(n);
    ssize_t sent = ::sendmsg(fd, &msg, MSG_NOSIGNAL);
    if (sent < 0) {
      if (errno == EINTR) continue;
      return false;  // includes EAGAIN: SO_SNDTIMEO passed
    }
    auto left = static_cast<size_t>(sent);
    while (n > 0 && left >= iov->iov_len) {
      left -= iov->iov_len;
      ++iov;
      --n;
    }
    if (n > 0) {
      iov->iov_base = static_cast<char*>(iov->iov_base) + left;
      iov->iov_len -= left;
    }
  }
  return true;
}

bool WriteResponse(int fd, const HttpResponse& r, bool keep_alive, bool head_only,
                   Clock::time_point deadline) {
  std::string h;
  h.reserve(160);
  h += "HTTP/1.1 ";
  h += std::to_string(r.status);
  h += ' ';
  h += Reason(r.status);
  h += "\r\n";
  if (!r.content_type.empty()) {
    h += "Content-Type: ";
    h += r.content_type;
    h += "\r\n";
  }
  h += "Content-Length: ";
  h += std::to_string(r.body.size());
  h += "\r\n";
  for (const auto& [k, v] : r.headers) {
    h += k;
    h += ": ";
    h += v;
    h += "\r\n";
  }
  if (!keep_alive) h += "Connection: close\r\n";
  h += "\r\n";
  struct iovec iov[2] = {{h.data(), h.size()},
                         {const_cast<char*>(r.body.data()), head_only ? 0 : r.body.size()}};
  return SendAll(fd, iov, iov[1].iov_len == 0 ? 1 : 2, deadline);
}

// After an error answer the client may still be sending a body we will not read: closing
// at once would reset the connection and could destroy the answer in flight. Stop
// writing, then read and drop what comes for a moment.
void LingeringClose(int fd) {
  ::shutdown(fd, SHUT_WR);
  char buf[16384];
  const auto until = Clock::now() + std::chrono::seconds(1);
  while (Clock::now() < until) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)) break;
  }
}

void SetTimeout(int fd, int opt, std::chrono::milliseconds d) {
  struct timeval tv {};
  tv.tv_sec = static_cast<time_t>(d.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((d.count() % 1000) * 1000);
  ::setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof tv);
}

// "host:port" ("[::1]:80" too); port 0 only when `allow_zero`.
Result<std::pair<std::string, int>> ParseHostPort(const std::string& addr, bool allow_zero) {
  size_t colon = addr.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return Status::InvalidArgument("address '" + addr + "' is not host:port");
  }
  std::string host = addr.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  auto port = ParseUint64(addr.substr(colon + 1), "port");
  if (!port.ok() || (*port == 0 && !allow_zero) || *port > 65535) {
    return Status::InvalidArgument("address '" + addr + "' has no valid port");
  }
  return std::make_pair(host, static_cast<int>(*port));
}

// `addr` is host:port; port 0 binds a free one (tests), which port() then reports.
Result<int> Listen(const std::string& addr) {
  ASSIGN_OR_RETURN(auto hp, ParseHostPort(addr, /*allow_zero=*/true));
  struct addrinfo hints {};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  struct addrinfo* res = nullptr;
  const std::string port = std::to_string(hp.second);
  if (int rc =
          ::getaddrinfo(hp.first.empty() ? nullptr : hp.first.c_str(), port.c_str(), &hints, &res);
      rc != 0) {
    return Status::InvalidArgument("cannot resolve '" + addr + "': " + ::gai_strerror(rc));
  }
  int fd = -1;
  int err = 0;
  for (auto* ai = res; ai != nullptr; ai = ai->ai_next) {
    fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      err = errno;
      continue;
    }
    // SO_REUSEADDR only: with SO_REUSEPORT a second process given the same address binds
    // it too and the kernel splits connections between them (decision 23).
    int yes = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    if (::bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && ::listen(fd, 1024) == 0) break;
    err = errno;
    ::close(fd);
    fd = -1;
  }
  ::freeaddrinfo(res);
  if (fd < 0) {
    return Status::Unavailable("cannot listen on " + addr + ": " + std::strerror(err) +
                               " (address in use or not local?)");
  }
  return fd;
}

}  // namespace

Result<std::pair<std::string, int>> SplitHostPort(const std::string& addr) {
  return ParseHostPort(addr, /*allow_zero=*/false);
}

HttpServer::HttpServer(HttpApi* api, HttpServerOptions options)
    : HttpServer([api](std::string_view m, std::string_view t, std::string_view b,
                       const HeaderLookup&) { return api->Handle(m, t, b); },
                 options) {}

HttpServer::HttpServer(HttpHandler handler, HttpServerOptions options)
    : handler_(std::move(handler)), options_(options) {}

HttpServer::~HttpServer() { Stop(); }

Status HttpServer::Start(const std::string& addr) {
  std::lock_guard<std::mutex> l(lifecycle_mu_);
  if (listen_fd_ >= 0 || stopping_) {
    return Status::FailedPrecondition("the HTTP server is already started (or stopped)");
  }
  ASSIGN_OR_RETURN(listen_fd_, Listen(addr));
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (epoll_fd_ < 0 || wake_fd_ < 0) {
    Status s = Status::Internal(std::string("epoll/eventfd: ") + std::strerror(errno));
    CloseFds();
    return s;
  }
  struct epoll_event ev {};
  ev.events = EPOLLIN;
  ev.data.u64 = kListenId;
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &ev);
  ev.data.u64 = kWakeId;
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev);
  const int threads = options_.threads > 0 ? options_.threads : 1;
  workers_.reserve(static_cast<size_t>(threads));
  for (int i = 0; i < threads; ++i) workers_.emplace_back([this] { WorkerLoop(); });
  poller_ = std::thread([this] { PollLoop(); });
  return Status::OK();
}

int HttpServer::port() const {
  struct sockaddr_storage ss {};
  socklen_t len = sizeof ss;
  if (listen_fd_ < 0 || ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    return 0;
  }
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
}

void HttpServer::Stop() {
  std::lock_guard<std::mutex> l(lifecycle_mu_);
  if (!poller_.joinable() && workers_.empty()) return;
  stop_deadline_ns_ = (Clock::now() + kStopGrace).time_since_epoch().count();
  stopping_ = true;
  uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof one);
  if (poller_.joinable()) poller_.join();
  {
    std::lock_guard<std::mutex> g(mu_);  // no worker between its check and its wait
  }
  ready_cv_.notify_all();
  for (auto& t : workers_) t.join();
  workers_.clear();
  CloseFds();
}

void HttpServer::CloseFds() {
  for (int* fd : {&listen_fd_, &epoll_fd_, &wake_fd_}) {
    if (*fd >= 0) ::close(*fd);
    *fd = -1;
  }
}

void HttpServer::PollLoop() {
  struct epoll_event events[64];
  auto last_sweep = Clock::now();
  while (!stopping_) {
    if (accept_paused_ && Clock::now() >= accept_resume_) {
      // Descriptors may have been freed since accept ran out: listen again.
      struct epoll_event ev {};
      ev.events = EPOLLIN;
      ev.data.u64 = kListenId;
      ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &ev);
      accept_paused_ = false;
    }
    const int n = ::epoll_wait(epoll_fd_, events, 64, accept_paused_ ? 100 : 1000);
    for (int i = 0; i < n; ++i) {
      const uint64_t id = events[i].data.u64;
      if (id == kListenId) {
        AcceptAll();
      } else if (id != kWakeId) {
        Unpark(id);
      }
    }
    if (Clock::now() - last_sweep >= std::chrono::seconds(1)) {
      last_sweep = Clock::now();
      CloseIdle();
    }
  }
  std::map<uint64_t, std::unique_ptr<HttpConnection>> parked;
  {
    std::lock_guard<std::mutex> l(mu_);
    parked.swap(parked_);
  }
  for (auto& [id, c] : parked) Close(std::move(c));
}

void HttpServer::AcceptAll() {
  for (;;) {
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        // The pending connection stays readable: stop watching it for a moment rather
        // than wake up for it in a loop.
        ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, listen_fd_, nullptr);
        accept_paused_ = true;
        accept_resume_ = Clock::now() + std::chrono::milliseconds(100);
      }
      return;  // EAGAIN: all taken
    }
    int yes = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof yes);
    SetTimeout(fd, SO_RCVTIMEO, std::chrono::milliseconds(std::max(1, options_.park_after_ms)));
    SetTimeout(fd, SO_SNDTIMEO, std::chrono::seconds(std::max(1, options_.read_timeout_s)));
    if (open_.fetch_add(1) >= options_.max_connections) {
      open_.fetch_sub(1);
      HttpResponse r = ErrorResponse(Status::Unavailable("the server has " +
                                                         std::to_string(options_.max_connections) +
                                                         " connections open; try again"));
      WriteResponse(fd, r, /*keep_alive=*/false, /*head_only=*/false,
                    Clock::now() + std::chrono::milliseconds(100));
      ::close(fd);
      continue;
    }
    std::lock_guard<std::mutex> l(mu_);
    ready_.push_back(std::make_unique<HttpConnection>(
        fd, next_id_++, RequestLimits{.max_body_bytes = options_.max_body_bytes}));
    ready_cv_.notify_one();
  }
}

void HttpServer::WorkerLoop() {
  for (;;) {
    std::unique_ptr<HttpConnection> c;
    {
      std::unique_lock<std::mutex> l(mu_);
      ready_cv_.wait(l, [this] { return stopping_ || !ready_.empty(); });
      if (ready_.empty()) return;
      c = std::move(ready_.front());
      ready_.pop_front();
    }
    Serve(std::move(c));
  }
}

void HttpServer::Serve(std::unique_ptr<HttpConnection> c) {
  using State = RequestReader::State;
  auto& reader = c->reader;
  thread_local char buf[65536];
  const auto io_timeout = std::chrono::seconds(std::max(1, options_.read_timeout_s));
  // An answer the server writes and then closes on (the client may still be sending).
  auto refuse = [&](HttpResponse r) {
    WriteResponse(c->fd, r, /*keep_alive=*/false, /*head_only=*/false, Clock::now() + io_timeout);
    LingeringClose(c->fd);
    return Close(std::move(c));
  };
  for (;;) {
    switch (reader.Next()) {
      case State::kReady: {
        const bool head = reader.method() == "HEAD";
        HttpResponse r;
        try {
          r = handler_(head ? std::string_view("GET") : reader.method(), reader.target(),
                       reader.body(),
                       [&reader](const std::string& name) { return reader.header(name); });
        } catch (const std::exception& e) {
          return refuse(ErrorResponse(
              Status::Internal(std::string("the request failed unexpectedly: ") + e.what())));
        } catch (...) {
          return refuse(ErrorResponse(Status::Internal("the request failed unexpectedly")));
        }
        const bool keep = reader.keep_alive() && !stopping_;
        if (!WriteResponse(c->fd, r, keep, head, Clock::now() + io_timeout)) {
          return Close(std::move(c));
        }
        if (!keep) {
          LingeringClose(c->fd);  // a pipelined request unread would reset the answer
          return Close(std::move(c));
        }
        reader.NextRequest();
        if (!reader.Idle()) c->request_start = Clock::now();  // the next one is under way
        continue;
      }
      case State::kSendContinue: {
        static constexpr char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
        struct iovec iov = {const_cast<char*>(kContinue), sizeof kContinue - 1};
        if (!SendAll(c->fd, &iov, 1, Clock::now() + io_timeout)) return Close(std::move(c));
        continue;
      }
      case State::kFailed: {
        HttpResponse r = ErrorResponse(reader.error());
        r.status = reader.error_http_status();
        return refuse(std::move(r));
      }
      case State::kNeedMore:
        break;
    }
    if (stopping_ &&
        (reader.Idle() || Clock::now().time_since_epoch().count() > stop_deadline_ns_.load())) {
      return Close(std::move(c));  // stopping: a request still arriving has had its grace
    }
    if (!reader.Idle() && Clock::now() - c->request_start >= io_timeout) {
      HttpResponse r =
          ErrorResponse(Status::DeadlineExceeded("the request did not arrive whole within " +
                                                 std::to_string(options_.read_timeout_s) + " s"));
      r.status = 408;
      return refuse(std::move(r));
    }
    const ssize_t n = ::recv(c->fd, buf, sizeof buf, 0);
    if (n > 0) {
      if (reader.Idle()) c->request_start = Clock::now();
      try {
        reader.Append(std::string_view(buf, static_cast<size_t>(n)));
      } catch (const std::bad_alloc&) {
        return Close(std::move(c));
      }
      continue;
    }
    if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (reader.Idle() && !stopping_ && errno != EINTR) return Park(std::move(c));
      continue;  // the checks above decide
    }
    return Close(std::move(c));  // closed by the client, or an error
  }
}

void HttpServer::Park(std::unique_ptr<HttpConnection> c) {
  std::lock_guard<std::mutex> l(mu_);
  if (stopping_) return Close(std::move(c));
  const int fd = c->fd;
  const uint64_t id = c->id;
  c->parked_at = Clock::now();
  parked_[id] = std::move(c);
  struct epoll_event ev {};
  ev.events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT;
  ev.data.u64 = id;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    auto it = parked_.find(id);
    auto lost = std::move(it->second);
    parked_.erase(it);
    Close(std::move(lost));
  }
}

void HttpServer::Unpark(uint64_t id) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = parked_.find(id);
  if (it == parked_.end()) return;
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, it->second->fd, nullptr);
  ready_.push_back(std::move(it->second));
  parked_.erase(it);
  ready_cv_.notify_one();
}

void HttpServer::CloseIdle() {
  const auto cutoff = Clock::now() - std::chrono::seconds(options_.idle_timeout_s);
  std::vector<std::unique_ptr<HttpConnection>> idle;
  {
    std::lock_guard<std::mutex> l(mu_);
    for (auto it = parked_.begin(); it != parked_.end();) {
      if (it->second->parked_at <= cutoff) {
        ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, it->second->fd, nullptr);
        idle.push_back(std::move(it->second));
        it = parked_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& c : idle) Close(std::move(c));
}

void HttpServer::Close(std::unique_ptr<HttpConnection> c) {
  if (!c) return;
  c.reset();  // closes the socket
  open_.fetch_sub(1);
}

}  // namespace gojodb::http
