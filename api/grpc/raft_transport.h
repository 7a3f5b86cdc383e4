// Raft messages between nodes over gRPC: a replication::Transport that streams
// batches to each peer, and the service that receives them.
//
// Sending never blocks the Raft loop: messages go into a bounded per-peer queue and a
// sender thread per peer writes them on one long-lived client stream, batching whatever
// has queued up. A full queue or a broken stream drops messages (Raft retransmits);
// broken streams reconnect with exponential backoff (10 ms doubling to 1 s).
//
// Snapshot messages go their own way: a second sender thread per peer streams each one
// in 1 MiB chunks on a stream of its own (SendSnapshot), so a large snapshot never holds
// up heartbeats and appends, and is never one huge gRPC message. Its outcome is
// reported back (SetSnapshotReporter) so that the leader retries a failed one.
#pragma once

#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "core/replication/raft_node.h"
#include "gojodb/v1/raft.grpc.pb.h"

namespace gojodb::rpc {

class GrpcRaftTransport final : public replication::Transport {
 public:
  // peers: node id -> host:port of its gRPC server.
  explicit GrpcRaftTransport(std::map<uint64_t, std::string> peers, size_t queue_limit = 4096);
  ~GrpcRaftTransport() override;

  // Messages of group 0 (a node with one group).
  void Send(std::vector<consensus::Message> messages) override {
    SendGroup(0, std::move(messages));
  }
  // Messages of `group`: a node's groups share its peers' streams and queues.
  void SendGroup(uint64_t group, std::vector<consensus::Message> messages);
  // A Transport for one group's RaftNode over this one. Must not outlive it.
  std::unique_ptr<replication::Transport> ForGroup(uint64_t group);

  // Adds a peer, or moves it to a new address (a membership change). Thread-safe.
  void SetPeer(uint64_t id, const std::string& addr);
  // Stops sending to a peer that left the group. Thread-safe.
  void RemovePeer(uint64_t id);

  // Messages dropped so far (queue full, unknown peer, broken stream).
  uint64_t dropped() const { return dropped_.load(); }
  // Snapshots streamed to the end so far.
  uint64_t snapshots_sent() const { return snapshots_sent_.load(); }

  // Called from a sender thread with each snapshot's outcome (group, peer id, delivered).
  void SetSnapshotReporter(std::function<void(uint64_t group, uint64_t to, bool ok)> report);

  static constexpr size_t kSnapshotChunkBytes = 1 << 20;

 private:
  struct Peer {
    std::string addr;
    std::mutex mu;
    std::condition_variable cv;
    std::deque<std::pair<uint64_t, std::string>> queue;  // GUARDED_BY(mu): group, message
    std::thread sender;
    std::atomic<bool> stop{false};
    // The live stream's context, so that stopping can cancel a Write blocked on a
    // peer that stopped reading.
    grpc::ClientContext* ctx = nullptr;                             // GUARDED_BY(mu)
    std::deque<std::pair<uint64_t, consensus::Message>> snapshots;  // GUARDED_BY(mu)
    std::condition_variable snapshot_cv;          // wakes the snapshot sender only
    grpc::ClientContext* snapshot_ctx = nullptr;  // GUARDED_BY(mu)
    std::thread snapshot_sender;
    uint64_t id = 0;
  };
  void SenderLoop(Peer* peer);
  void SnapshotLoop(Peer* peer);
  bool StreamSnapshot(Peer* peer, v1::RaftTransport::Stub* stub, uint64_t group,
                      consensus::Message m);
  void Report(uint64_t group, uint64_t to, bool ok);
  std::unique_ptr<Peer> StartPeer(uint64_t id, const std::string& addr);
  static void StopPeer(std::unique_ptr<Peer> peer);

  const size_t queue_limit_;
  std::mutex peers_mu_;
  std::map<uint64_t, std::unique_ptr<Peer>> peers_;  // GUARDED_BY(peers_mu_)
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> dropped_{0};
  std::atomic<uint64_t> snapshots_sent_{0};
  std::mutex report_mu_;
  std::function<void(uint64_t, uint64_t, bool)> report_;  // GUARDED_BY(report_mu_)
};

// Receives peers' streams and hands each decoded message, with its group, to `deliver`.
class RaftTransportService final : public v1::RaftTransport::Service {
 public:
  using GroupDeliver = std::function<void(uint64_t group, consensus::Message)>;
  // Snapshots larger than `max_snapshot_bytes` are refused (RESOURCE_EXHAUSTED).
  explicit RaftTransportService(GroupDeliver deliver, uint64_t max_snapshot_bytes = 4ull << 30)
      : deliver_(std::move(deliver)), max_snapshot_bytes_(max_snapshot_bytes) {}
  // For a node with one group: the group is ignored.
  explicit RaftTransportService(std::function<void(consensus::Message)> deliver,
                                uint64_t max_snapshot_bytes = 4ull << 30)
      : RaftTransportService(
            [d = std::move(deliver)](uint64_t, consensus::Message m) { d(std::move(m)); },
            max_snapshot_bytes) {}
  grpc::Status Send(grpc::ServerContext* ctx, grpc::ServerReader<v1::RaftMessages>* reader,
                    v1::RaftAck* ack) override;
  grpc::Status SendSnapshot(grpc::ServerContext* ctx, grpc::ServerReader<v1::SnapshotChunk>* reader,
                            v1::RaftAck* ack) override;

 private:
  GroupDeliver deliver_;
  const uint64_t max_snapshot_bytes_;
};

}  // namespace gojodb::rpc
