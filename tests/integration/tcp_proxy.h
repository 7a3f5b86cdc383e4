// A fault-injecting TCP proxy for tests: one netproxy Link (tools/netproxy/proxy.h) on a
// free port of 127.0.0.1, forwarding to 127.0.0.1:target_port. Blocking it is a real
// network partition of that link. Put one on each directed link between processes (A
// reaches B through proxy A→B) to partition any two sets of processes.
#pragma once

#include <cstdlib>
#include <memory>
#include <string>

#include "tools/netproxy/proxy.h"

namespace gojodb::testing {

class TcpProxy {
 public:
  explicit TcpProxy(int target_port) {
    auto link =
        netproxy::Link::Start("", "127.0.0.1:0", "127.0.0.1:" + std::to_string(target_port));
    if (!link.ok()) std::abort();  // a test harness failure, not a product one
    link_ = std::move(link).value();
  }

  int port() const { return link_->port(); }
  std::string addr() const { return link_->listen_addr(); }
  // Cuts the link (and keeps it cut) or restores it.
  void SetBlocked(bool blocked) { link_->SetBlocked(blocked); }
  bool blocked() const { return link_->blocked(); }

 private:
  std::unique_ptr<netproxy::Link> link_;
};

}  // namespace gojodb::testing
