// StorageNode: a storage node's moving parts, shared by gojodb-storage and the
// standalone server: the Store of shard replicas over the node's engine, the Raft
// transport between nodes, the ShardKv service, and the agent that registers with the
// controller, heartbeats the node's shards, carries out the controller's commands and
// follows the shard map (peers' addresses, replicas the map removed). See
// docs/operations/storage.md.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/sharding/store.h"
#include "gojodb/v1/controller.pb.h"

namespace gojodb::rpc {
class GrpcRaftTransport;
class RaftTransportService;
class ShardClient;
class ShardKvService;
}  // namespace gojodb::rpc

namespace gojodb::storage_node {

class ControllerLink;
class ControllerTso;
class NodeAgent;
class GroupTransportsAdapter;

struct StorageNodeOptions {
  // id, the gRPC address others reach this node at, HTTP address, capacity, labels.
  v1::NodeDescriptor self;
  std::vector<std::string> controllers;
  // Where to reach other nodes for Raft instead of their registered addresses.
  std::map<uint64_t, std::string> peer_addrs;
  sharding::StoreOptions store;  // node_id is taken from `self`
  std::chrono::milliseconds heartbeat{500};
  std::chrono::milliseconds request_timeout{5000};
  // Timestamps taken from the controller per call (ControllerTso).
  uint32_t timestamp_batch = 1024;
  // The controller in this process, if any (ControllerTso::LocalSource).
  std::function<Result<uint64_t>(uint32_t count)> local_timestamps;
  std::string data_dir;  // its file system's capacity is reported when self has none
};

class StorageNode {
 public:
  // Opens the store (replicas start at once; Raft messages are taken from now on).
  // `engine` is not owned and must outlive the node.
  static Result<std::unique_ptr<StorageNode>> Open(StorageNodeOptions options,
                                                   storage::Engine* engine);
  ~StorageNode();  // stops the agent, the replicas and the transport

  // Adds the Raft transport and ShardKv services; the services must outlive the server.
  void RegisterOn(grpc::ServerBuilder* builder);
  // Adds the ShardKv service only, for a server whose Raft transport service also
  // carries another group (the standalone server's controller, group 0 on the wire);
  // that service hands the shards' messages to store()->Deliver.
  void RegisterShardKvOn(grpc::ServerBuilder* builder);
  // Starts registration and heartbeats (once the gRPC server listens).
  void Start();

  sharding::Store* store() { return store_.get(); }
  // The ShardKv methods as plain calls, for a router in this process (the standalone
  // server's); valid while the node lives.
  rpc::ShardClient* local_client();
  bool registered() const;
  uint64_t heartbeats() const;
  // GET /v1/shards: the replicas here with their Raft state.
  std::string ShardsJson() const;

 private:
  explicit StorageNode(StorageNodeOptions options);

  const StorageNodeOptions options_;
  std::unique_ptr<ControllerLink> link_;
  std::unique_ptr<ControllerTso> tso_;
  std::unique_ptr<rpc::GrpcRaftTransport> transport_;
  std::unique_ptr<GroupTransportsAdapter> transports_;
  std::unique_ptr<sharding::Store> store_;
  std::unique_ptr<rpc::RaftTransportService> raft_service_;
  std::unique_ptr<rpc::ShardKvService> shard_service_;
  std::unique_ptr<NodeAgent> agent_;
};

}  // namespace gojodb::storage_node
