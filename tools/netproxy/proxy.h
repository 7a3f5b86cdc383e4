// Fault-injecting TCP forwarding on loopback. A Link accepts connections on one address
// and forwards each to a target address, counting bytes both ways. Blocking a link is a
// real network partition of it as the processes see it: open connections are reset in
// both directions and new ones are reset as soon as they are accepted, until it is
// unblocked. Put one link on each directed path between processes (A reaches B through
// link A>B) to partition any two sets of processes.
//
// Each forwarded connection is served by one thread that moves bytes both ways with
// non-blocking sockets, so a peer that stops reading (SIGSTOP) stalls only its own
// connection and a block still cuts it.
#pragma once

#include <netinet/in.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <thread>

#include "internal/status.h"

namespace gojodb::netproxy {

// "host:port" with host an IPv4 address or "localhost"; port 0 only if allow_zero_port.
Result<sockaddr_in> ParseAddr(std::string_view addr, bool allow_zero_port = false);
std::string FormatAddr(const sockaddr_in& addr);

struct LinkStats {
  uint64_t bytes_forward = 0;  // listener side to target
  uint64_t bytes_back = 0;     // target to listener side
  uint64_t open = 0;           // connections being forwarded now
  uint64_t accepted = 0;       // connections forwarded since start
  uint64_t reset = 0;          // connections refused or cut by a block, or target down
};

class Link {
 public:
  // Binds listen_addr (port 0: a free port) and starts forwarding to target_addr.
  static Result<std::unique_ptr<Link>> Start(std::string name, std::string_view listen_addr,
                                             std::string_view target_addr);
  ~Link();
  Link(const Link&) = delete;
  Link& operator=(const Link&) = delete;

  const std::string& name() const { return name_; }
  int port() const { return ntohs(listen_.sin_port); }
  std::string listen_addr() const { return FormatAddr(listen_); }
  std::string target_addr() const { return FormatAddr(target_); }

  // Cuts the link and keeps it cut, or restores it.
  void SetBlocked(bool blocked);
  bool blocked() const { return blocked_.load(); }
  LinkStats stats() const;

 private:
  Link(std::string name, const sockaddr_in& listen, const sockaddr_in& target, int listen_fd);
  void AcceptLoop();
  void Serve(int client);
  void Pump(int client, int upstream);
  void ResetBoth(int client, int upstream);  // counted as one reset connection

  const std::string name_;
  const sockaddr_in listen_;
  const sockaddr_in target_;
  const int listen_fd_;
  std::atomic<bool> blocked_{false};
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> bytes_forward_{0}, bytes_back_{0}, accepted_{0}, reset_{0};

  mutable std::mutex mu_;
  std::condition_variable idle_;
  std::set<int> open_fds_;  // GUARDED_BY(mu_): sockets of forwarded connections
  int serving_ = 0;         // GUARDED_BY(mu_): threads serving a connection
  std::thread acceptor_;
};

}  // namespace gojodb::netproxy
