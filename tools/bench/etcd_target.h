// tools/bench: an etcd v3 cluster over its gRPC KV API (etcdserverpb.KV), the peer the
// GojoDB cluster is compared with in docs/benchmarks.md.
//
// Operations map onto etcd as a client library would issue them:
//   read               Range of one key, serializable=false (linearizable: etcd's default,
//                      like GojoDB's default read)
//   update, insert     Put
//   scan               Range [start, end of keyspace) with limit = the scan length
//   read-modify-write  Range, then a Txn that puts only if the key's mod_revision is
//                      still the one read (a lost race is a conflict, as with GojoDB's
//                      if_version)
// etcd has no collections; keys are the workload's keys as they are.
//
// Several endpoints (host:port,host:port,...) are the members of one cluster: client
// thread t uses endpoint t mod N, as etcd's own client spreads requests over its
// endpoints; a member that does not lead forwards writes to the leader and confirms
// linearizable reads with it (ReadIndex).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "tools/bench/target.h"

namespace grpc {
class Channel;
}

namespace gojodb::bench {

struct EtcdTargetOptions {
  std::vector<std::string> endpoints;  // host:port of the members' client (gRPC) URLs
  int timeout_ms = 10000;              // per request
};

class EtcdTarget final : public Target {
 public:
  explicit EtcdTarget(EtcdTargetOptions options);
  ~EtcdTarget() override;

  std::string Describe() const override;
  // Waits up to 10 s until every endpoint answers a linearizable Range (a cluster that
  // was just started may still be electing its leader).
  Status Open() override;
  std::unique_ptr<Connection> Connect(int thread) override;

 private:
  EtcdTargetOptions options_;
  std::vector<std::shared_ptr<grpc::Channel>> channels_;  // one per endpoint
};

}  // namespace gojodb::bench
