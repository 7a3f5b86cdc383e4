#include "tools/netproxy/proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <system_error>

namespace gojodb::netproxy {

namespace {

constexpr int kPollMs = 200;  // how late a pump waiting only to write notices a block
constexpr size_t kBufBytes = 64 << 10;

std::string Errno(std::string_view what) { return std::string(what) + ": " + std::strerror(errno); }

// Closes with an RST instead of a FIN: the peer sees "connection reset".
void ResetClose(int fd) {
  linger l{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  ::close(fd);
}

void SetNoDelay(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

// One direction of a forwarded connection: bytes read from `from`, not yet sent to `to`.
struct Direction {
  int from;
  int to;
  std::atomic<uint64_t>* counter;
  std::unique_ptr<char[]> buf = std::make_unique<char[]>(kBufBytes);
  size_t begin = 0;
  size_t end = 0;
  bool eof = false;

  bool pending() const { return begin < end; }
  bool wants_read() const { return !eof && !pending(); }
};

}  // namespace

Result<sockaddr_in> ParseAddr(std::string_view addr, bool allow_zero_port) {
  const size_t colon = addr.rfind(':');
  if (colon == std::string_view::npos || colon == 0) {
    return Status::InvalidArgument("address '" + std::string(addr) + "' is not host:port");
  }
  std::string host(addr.substr(0, colon));
  std::string_view port_text = addr.substr(colon + 1);
  int port = -1;
  auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || ptr != port_text.data() + port_text.size() || port < 0 || port > 65535 ||
      (port == 0 && !allow_zero_port)) {
    return Status::InvalidArgument("address '" + std::string(addr) + "' has a bad port");
  }
  if (host == "localhost") host = "127.0.0.1";
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  if (::inet_pton(AF_INET, host.c_str(), &a.sin_addr) != 1) {
    return Status::InvalidArgument("address '" + std::string(addr) +
                                   "' does not have an IPv4 host");
  }
  return a;
}

std::string FormatAddr(const sockaddr_in& addr) {
  char host[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &addr.sin_addr, host, sizeof(host));
  return std::string(host) + ":" + std::to_string(ntohs(addr.sin_port));
}

Result<std::unique_ptr<Link>> Link::Start(std::string name, std::string_view listen_addr,
                                          std::string_view target_addr) {
  ASSIGN_OR_RETURN(sockaddr_in listen, ParseAddr(listen_addr, /*allow_zero_port=*/true));
  ASSIGN_OR_RETURN(sockaddr_in target, ParseAddr(target_addr));
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::Unavailable(Errno("socket"));
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (::bind(fd, reinterpret_cast<sockaddr*>(&listen), sizeof(listen)) != 0) {
    Status s = Status::Unavailable(Errno("bind " + std::string(listen_addr)));
    ::close(fd);
    return s;
  }
  if (::listen(fd, 1024) != 0) {
    Status s = Status::Unavailable(Errno("listen " + std::string(listen_addr)));
    ::close(fd);
    return s;
  }
  socklen_t len = sizeof(listen);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&listen), &len);
  return std::unique_ptr<Link>(new Link(std::move(name), listen, target, fd));
}

Link::Link(std::string name, const sockaddr_in& listen, const sockaddr_in& target, int listen_fd)
    : name_(std::move(name)), listen_(listen), target_(target), listen_fd_(listen_fd) {
  acceptor_ = std::thread([this] { AcceptLoop(); });
}

Link::~Link() {
  stopping_ = true;
  ::shutdown(listen_fd_, SHUT_RDWR);  // wakes the acceptor
  acceptor_.join();
  ::close(listen_fd_);
  std::unique_lock lock(mu_);
  for (int fd : open_fds_) ::shutdown(fd, SHUT_RD);  // wakes the pumps
  idle_.wait(lock, [this] { return serving_ == 0; });
}

void Link::SetBlocked(bool blocked) {
  blocked_ = blocked;
  if (!blocked) return;
  std::lock_guard lock(mu_);
  // A pump waiting to read wakes up at once; the pumps reset their connections.
  for (int fd : open_fds_) ::shutdown(fd, SHUT_RD);
}

LinkStats Link::stats() const {
  LinkStats s;
  s.bytes_forward = bytes_forward_.load();
  s.bytes_back = bytes_back_.load();
  s.accepted = accepted_.load();
  s.reset = reset_.load();
  std::lock_guard lock(mu_);
  s.open = open_fds_.size() / 2;
  return s;
}

void Link::AcceptLoop() {
  while (!stopping_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 200) <= 0) continue;
    int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      continue;
    }
    if (blocked_ || stopping_) {
      ++reset_;
      ResetClose(client);
      continue;
    }
    {
      std::lock_guard lock(mu_);
      ++serving_;
    }
    try {
      std::thread([this, client] { Serve(client); }).detach();
    } catch (const std::system_error&) {  // out of threads: refuse this one
      ++reset_;
      ResetClose(client);
      std::lock_guard lock(mu_);
      --serving_;
      idle_.notify_all();
    }
  }
}

void Link::Serve(int client) {
  int upstream = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (upstream < 0 ||
      ::connect(upstream, reinterpret_cast<const sockaddr*>(&target_), sizeof(target_)) != 0) {
    if (upstream >= 0) ::close(upstream);
    ++reset_;
    ResetClose(client);
  } else {
    SetNoDelay(client);
    SetNoDelay(upstream);
    bool cut;
    {
      std::lock_guard lock(mu_);
      cut = blocked_ || stopping_;
      if (!cut) {
        open_fds_.insert(client);
        open_fds_.insert(upstream);
      }
    }
    if (cut) {
      ResetBoth(client, upstream);
    } else {
      ++accepted_;
      Pump(client, upstream);
    }
  }
  std::lock_guard lock(mu_);
  --serving_;
  idle_.notify_all();
}

void Link::Pump(int client, int upstream) {
  ::fcntl(client, F_SETFL, ::fcntl(client, F_GETFL) | O_NONBLOCK);
  ::fcntl(upstream, F_SETFL, ::fcntl(upstream, F_GETFL) | O_NONBLOCK);
  // d[0] reads the client (pfd[0]) and writes upstream; d[1] the other way.
  Direction d[2] = {{client, upstream, &bytes_forward_}, {upstream, client, &bytes_back_}};
  bool cut = false;
  while (!cut) {
    if (blocked_ || stopping_) {
      cut = true;
      break;
    }
    if (d[0].eof && !d[0].pending() && d[1].eof && !d[1].pending()) break;
    pollfd pfd[2] = {{client, 0, 0}, {upstream, 0, 0}};
    for (int i = 0; i < 2; ++i) {
      if (d[i].wants_read()) pfd[i].events |= POLLIN;
      if (d[i].pending()) pfd[1 - i].events |= POLLOUT;
    }
    // An fd with nothing to wait for is left out: a hung-up socket would wake poll at once.
    for (pollfd& p : pfd) {
      if (p.events == 0) p.fd = -1;
    }
    int r = ::poll(pfd, 2, kPollMs);
    if (r < 0 && errno != EINTR) cut = true;
    if (r <= 0) continue;
    if ((pfd[0].revents | pfd[1].revents) & (POLLERR | POLLNVAL)) {
      cut = true;  // reset by a peer: reset the other side too
      break;
    }
    for (int i = 0; i < 2 && !cut; ++i) {
      Direction& x = d[i];
      if (x.wants_read() && (pfd[i].revents & (POLLIN | POLLHUP | POLLERR))) {
        ssize_t n = ::recv(x.from, x.buf.get(), kBufBytes, 0);
        if (n > 0) {
          x.begin = 0;
          x.end = static_cast<size_t>(n);
          *x.counter += static_cast<uint64_t>(n);
        } else if (n == 0) {
          x.eof = true;
          if (blocked_ || stopping_) {
            cut = true;  // woken by SetBlocked or the destructor, not by the peer
          } else {
            ::shutdown(x.to, SHUT_WR);  // pass the half-close on
          }
        } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
          cut = true;  // reset by a peer: reset the other side too
        }
      }
      if (!cut && x.pending()) {
        ssize_t w = ::send(x.to, x.buf.get() + x.begin, x.end - x.begin, MSG_NOSIGNAL);
        if (w > 0) {
          x.begin += static_cast<size_t>(w);
          if (x.begin == x.end) x.begin = x.end = 0;
        } else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
          cut = true;
        }
      }
    }
  }
  std::lock_guard lock(mu_);  // held while closing: SetBlocked never sees a reused fd
  open_fds_.erase(client);
  open_fds_.erase(upstream);
  if (cut) {
    ResetBoth(client, upstream);
  } else {
    ::close(client);
    ::close(upstream);
  }
}

void Link::ResetBoth(int client, int upstream) {
  ++reset_;
  ResetClose(client);
  ResetClose(upstream);
}

}  // namespace gojodb::netproxy
