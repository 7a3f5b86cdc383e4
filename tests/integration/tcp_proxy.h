// A fault-injecting TCP proxy for tests: forwards every connection made to its port on
// 127.0.0.1 to a target address. Blocking it is a real network partition of that link:
// open connections are cut and new ones are closed as soon as they are accepted, until
// it is unblocked. Put one on each directed link between processes (A reaches B through
// proxy A→B) to partition any two sets of processes.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace gojodb::testing {

class TcpProxy {
 public:
  // Listens on a free port of 127.0.0.1 and forwards to 127.0.0.1:target_port.
  explicit TcpProxy(int target_port);
  ~TcpProxy();

  int port() const { return port_; }
  std::string addr() const { return "127.0.0.1:" + std::to_string(port_); }
  // Cuts the link (and keeps it cut) or restores it.
  void SetBlocked(bool blocked);
  bool blocked() const { return blocked_.load(); }

 private:
  void AcceptLoop();
  void Pump(int client, int upstream);

  const int target_port_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> blocked_{false};
  std::atomic<bool> stopping_{false};
  std::mutex mu_;
  std::set<int> open_fds_;          // GUARDED_BY(mu_)
  std::vector<std::thread> pumps_;  // GUARDED_BY(mu_)
  std::thread acceptor_;
};

}  // namespace gojodb::testing
