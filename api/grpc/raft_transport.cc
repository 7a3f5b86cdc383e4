#include "api/grpc/raft_transport.h"

#include <optional>

#include "core/consensus/codec.h"

namespace gojodb::rpc {

GrpcRaftTransport::GrpcRaftTransport(std::map<uint64_t, std::string> peers, size_t queue_limit)
    : queue_limit_(queue_limit) {
  for (auto& [id, addr] : peers) peers_[id] = StartPeer(id, addr);
}

GrpcRaftTransport::~GrpcRaftTransport() {
  stopping_ = true;
  std::map<uint64_t, std::unique_ptr<Peer>> peers;
  {
    std::lock_guard lock(peers_mu_);
    peers.swap(peers_);
  }
  for (auto& [id, p] : peers) StopPeer(std::move(p));
}

std::unique_ptr<GrpcRaftTransport::Peer> GrpcRaftTransport::StartPeer(uint64_t id,
                                                                      const std::string& addr) {
  auto p = std::make_unique<Peer>();
  p->id = id;
  p->addr = addr;
  p->sender = std::thread([this, raw = p.get()] { SenderLoop(raw); });
  p->snapshot_sender = std::thread([this, raw = p.get()] { SnapshotLoop(raw); });
  return p;
}

void GrpcRaftTransport::SetSnapshotReporter(std::function<void(uint64_t, uint64_t, bool)> report) {
  std::lock_guard lock(report_mu_);
  report_ = std::move(report);
}

void GrpcRaftTransport::Report(uint64_t group, uint64_t to, bool ok) {
  std::lock_guard lock(report_mu_);
  if (report_) report_(group, to, ok);
}

namespace {
class GroupTransport final : public replication::Transport {
 public:
  GroupTransport(GrpcRaftTransport* t, uint64_t group) : t_(t), group_(group) {}
  void Send(std::vector<consensus::Message> messages) override {
    t_->SendGroup(group_, std::move(messages));
  }

 private:
  GrpcRaftTransport* const t_;
  const uint64_t group_;
};
}  // namespace

std::unique_ptr<replication::Transport> GrpcRaftTransport::ForGroup(uint64_t group) {
  return std::make_unique<GroupTransport>(this, group);
}

void GrpcRaftTransport::StopPeer(std::unique_ptr<Peer> peer) {
  {
    std::lock_guard lock(peer->mu);
    peer->stop = true;
    if (peer->ctx != nullptr) peer->ctx->TryCancel();
    if (peer->snapshot_ctx != nullptr) peer->snapshot_ctx->TryCancel();
  }
  peer->cv.notify_all();
  peer->snapshot_cv.notify_all();
  peer->sender.join();
  peer->snapshot_sender.join();
}

void GrpcRaftTransport::SetPeer(uint64_t id, const std::string& addr) {
  std::unique_ptr<Peer> old;
  {
    std::lock_guard lock(peers_mu_);
    auto it = peers_.find(id);
    if (it != peers_.end() && it->second->addr == addr) return;
    if (it != peers_.end()) old = std::move(it->second);
    peers_[id] = StartPeer(id, addr);
  }
  if (old) StopPeer(std::move(old));
}

void GrpcRaftTransport::RemovePeer(uint64_t id) {
  std::unique_ptr<Peer> old;
  {
    std::lock_guard lock(peers_mu_);
    auto it = peers_.find(id);
    if (it == peers_.end()) return;
    old = std::move(it->second);
    peers_.erase(it);
  }
  StopPeer(std::move(old));
}

void GrpcRaftTransport::SendGroup(uint64_t group, std::vector<consensus::Message> messages) {
  std::lock_guard peers_lock(peers_mu_);
  for (auto& m : messages) {
    auto it = peers_.find(m.to.value());
    if (it == peers_.end()) {
      ++dropped_;
      continue;
    }
    Peer* p = it->second.get();
    if (m.type == consensus::MessageType::kSnap && m.snapshot) {
      bool queued = false;
      {
        std::lock_guard lock(p->mu);
        // One being sent and one waiting is plenty: Raft sends the newest again.
        if (p->snapshots.size() < 1) {
          p->snapshots.emplace_back(group, std::move(m));
          queued = true;
        }
      }
      if (queued) {
        p->snapshot_cv.notify_one();
      } else {
        ++dropped_;
        Report(group, it->first, false);
      }
      continue;
    }
    std::string bytes = consensus::EncodeMessage(m);
    {
      std::lock_guard lock(p->mu);
      if (p->queue.size() >= queue_limit_) {
        ++dropped_;
        continue;
      }
      p->queue.emplace_back(group, std::move(bytes));
    }
    p->cv.notify_one();
  }
}

void GrpcRaftTransport::SenderLoop(Peer* peer) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 10);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  auto channel = grpc::CreateCustomChannel(peer->addr, grpc::InsecureChannelCredentials(), args);
  auto stub = v1::RaftTransport::NewStub(channel);
  std::unique_ptr<grpc::ClientContext> ctx;
  std::unique_ptr<grpc::ClientWriter<v1::RaftMessages>> writer;
  v1::RaftAck ack;
  auto backoff = std::chrono::milliseconds(10);
  while (!stopping_ && !peer->stop) {
    v1::RaftMessages batch;
    {
      std::unique_lock lock(peer->mu);
      peer->cv.wait(lock, [&] { return stopping_ || peer->stop || !peer->queue.empty(); });
      if (stopping_ || peer->stop) break;
      bool any_group = false;
      while (!peer->queue.empty() && batch.messages_size() < 256) {
        auto& [group, bytes] = peer->queue.front();
        any_group = any_group || group != 0;
        batch.add_groups(group);
        batch.add_messages(std::move(bytes));
        peer->queue.pop_front();
      }
      if (!any_group) batch.clear_groups();  // all group 0: leave the field out
    }
    if (!writer) {
      ctx = std::make_unique<grpc::ClientContext>();
      writer = stub->Send(ctx.get(), &ack);
      std::lock_guard lock(peer->mu);
      peer->ctx = ctx.get();
      if (peer->stop) ctx->TryCancel();
    }
    if (writer->Write(batch)) {
      backoff = std::chrono::milliseconds(10);
      continue;
    }
    // The stream broke: drop this batch (Raft retransmits), reconnect after a pause.
    dropped_ += static_cast<uint64_t>(batch.messages_size());
    writer->Finish();
    writer.reset();
    {
      std::lock_guard lock(peer->mu);
      peer->ctx = nullptr;
    }
    ctx.reset();
    std::unique_lock lock(peer->mu);
    peer->cv.wait_for(lock, backoff, [&] { return stopping_ || peer->stop; });
    backoff = std::min(backoff * 2, std::chrono::milliseconds(1000));
  }
  if (writer) {
    ctx->TryCancel();
    writer->Finish();
  }
}

void GrpcRaftTransport::SnapshotLoop(Peer* peer) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 10);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  args.SetInt("gojodb-snapshot-channel", 1);  // a connection of its own
  auto channel = grpc::CreateCustomChannel(peer->addr, grpc::InsecureChannelCredentials(), args);
  auto stub = v1::RaftTransport::NewStub(channel);
  while (true) {
    consensus::Message m;
    uint64_t group = 0;
    {
      std::unique_lock lock(peer->mu);
      peer->snapshot_cv.wait(lock,
                             [&] { return stopping_ || peer->stop || !peer->snapshots.empty(); });
      if (stopping_ || peer->stop) return;
      group = peer->snapshots.front().first;
      m = std::move(peer->snapshots.front().second);
      peer->snapshots.pop_front();
    }
    const uint64_t to = m.to.value();
    const bool ok = StreamSnapshot(peer, stub.get(), group, std::move(m));
    if (ok) {
      ++snapshots_sent_;
    } else {
      ++dropped_;
    }
    Report(group, to, ok);
  }
}

bool GrpcRaftTransport::StreamSnapshot(Peer* peer, v1::RaftTransport::Stub* stub, uint64_t group,
                                       consensus::Message m) {
  std::string data = std::move(m.snapshot->data);
  m.snapshot->data.clear();
  grpc::ClientContext ctx;
  // A snapshot that cannot be delivered in this long is given up (and retried by Raft).
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(10));
  {
    std::lock_guard lock(peer->mu);
    if (peer->stop) return false;
    peer->snapshot_ctx = &ctx;
  }
  v1::RaftAck ack;
  auto writer = stub->SendSnapshot(&ctx, &ack);
  bool ok = true;
  size_t off = 0;
  bool first = true;
  do {
    v1::SnapshotChunk chunk;
    if (first) {
      chunk.set_header(consensus::EncodeMessage(m));
      chunk.set_group(group);
    }
    const size_t n = std::min(kSnapshotChunkBytes, data.size() - off);
    chunk.set_data(data.data() + off, n);
    off += n;
    chunk.set_last(off == data.size());
    ok = writer->Write(chunk);
    first = false;
  } while (ok && off < data.size());
  if (ok) ok = writer->WritesDone();
  ok = writer->Finish().ok() && ok;
  std::lock_guard lock(peer->mu);
  peer->snapshot_ctx = nullptr;
  return ok;
}

grpc::Status RaftTransportService::SendSnapshot(grpc::ServerContext*,
                                                grpc::ServerReader<v1::SnapshotChunk>* reader,
                                                v1::RaftAck*) {
  v1::SnapshotChunk chunk;
  std::optional<consensus::Message> m;
  uint64_t group = 0;
  std::string data;
  while (reader->Read(&chunk)) {
    if (!m) {
      group = chunk.group();
      if (chunk.header().empty()) {
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                            "a snapshot stream must start with its header");
      }
      auto decoded = consensus::DecodeMessage(chunk.header());
      if (!decoded.ok() || decoded->type != consensus::MessageType::kSnap || !decoded->snapshot) {
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                            "the snapshot stream's header is not a snapshot message");
      }
      m = std::move(decoded).value();
    }
    if (data.size() + chunk.data().size() > max_snapshot_bytes_) {
      return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                          "snapshot larger than " + std::to_string(max_snapshot_bytes_) + " bytes");
    }
    data += chunk.data();
    if (chunk.last()) {
      m->snapshot->data = std::move(data);
      deliver_(group, std::move(*m));
      return grpc::Status::OK;
    }
  }
  return grpc::Status(grpc::StatusCode::CANCELLED, "the snapshot stream ended early");
}

grpc::Status RaftTransportService::Send(grpc::ServerContext*,
                                        grpc::ServerReader<v1::RaftMessages>* reader,
                                        v1::RaftAck*) {
  v1::RaftMessages batch;
  while (reader->Read(&batch)) {
    const bool grouped = batch.groups_size() > 0;
    if (grouped && batch.groups_size() != batch.messages_size()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "raft batch has " + std::to_string(batch.groups_size()) + " groups for " +
                              std::to_string(batch.messages_size()) + " messages");
    }
    for (int i = 0; i < batch.messages_size(); ++i) {
      auto m = consensus::DecodeMessage(batch.messages(i));
      if (!m.ok()) {
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                            "undecodable raft message: " + m.status().message());
      }
      deliver_(grouped ? batch.groups(i) : 0, std::move(m).value());
    }
  }
  return grpc::Status::OK;
}

}  // namespace gojodb::rpc
