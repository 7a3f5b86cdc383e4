// tools/bench: GojoDB over gRPC through the C++ client library (pkg/client), either
// through a server (standalone or gateway) or routed by the shard map to the storage nodes.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "tools/bench/target.h"

namespace gojodb::client {
class Client;
}

namespace gojodb::bench {

struct ServerTargetOptions {
  std::string addr;  // host:port of a standalone server or gateway
  // Or the controllers of a cluster: the client library routes by the shard map.
  std::vector<std::string> controllers;
  std::string collection = "default";  // created when missing
  int threads = 1;
  int threads_per_client = 8;  // client threads sharing one Client (gRPC channel)
  int timeout_ms = 10000;      // per request
};

class ServerTarget final : public Target {
 public:
  explicit ServerTarget(ServerTargetOptions options);
  ~ServerTarget() override;

  std::string Describe() const override;
  // Waits briefly for the server to answer, then creates the collection if missing.
  Status Open() override;
  std::unique_ptr<Connection> Connect(int thread) override;

 private:
  std::string Where() const;
  ServerTargetOptions options_;
  std::vector<std::shared_ptr<client::Client>> clients_;
};

}  // namespace gojodb::bench
