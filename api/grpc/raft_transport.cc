#include "api/grpc/raft_transport.h"

#include "core/consensus/codec.h"

namespace gojodb::rpc {

GrpcRaftTransport::GrpcRaftTransport(std::map<uint64_t, std::string> peers, size_t queue_limit)
    : queue_limit_(queue_limit) {
  for (auto& [id, addr] : peers) peers_[id] = StartPeer(addr);
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

std::unique_ptr<GrpcRaftTransport::Peer> GrpcRaftTransport::StartPeer(const std::string& addr) {
  auto p = std::make_unique<Peer>();
  p->addr = addr;
  p->sender = std::thread([this, raw = p.get()] { SenderLoop(raw); });
  return p;
}

void GrpcRaftTransport::StopPeer(std::unique_ptr<Peer> peer) {
  {
    std::lock_guard lock(peer->mu);
    peer->stop = true;
    if (peer->ctx != nullptr) peer->ctx->TryCancel();
  }
  peer->cv.notify_all();
  peer->sender.join();
}

void GrpcRaftTransport::SetPeer(uint64_t id, const std::string& addr) {
  std::unique_ptr<Peer> old;
  {
    std::lock_guard lock(peers_mu_);
    auto it = peers_.find(id);
    if (it != peers_.end() && it->second->addr == addr) return;
    if (it != peers_.end()) old = std::move(it->second);
    peers_[id] = StartPeer(addr);
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

void GrpcRaftTransport::Send(std::vector<consensus::Message> messages) {
  std::lock_guard peers_lock(peers_mu_);
  for (auto& m : messages) {
    auto it = peers_.find(m.to.value());
    if (it == peers_.end()) {
      ++dropped_;
      continue;
    }
    Peer* p = it->second.get();
    std::string bytes = consensus::EncodeMessage(m);
    {
      std::lock_guard lock(p->mu);
      if (p->queue.size() >= queue_limit_) {
        ++dropped_;
        continue;
      }
      p->queue.push_back(std::move(bytes));
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
      while (!peer->queue.empty() && batch.messages_size() < 256) {
        batch.add_messages(std::move(peer->queue.front()));
        peer->queue.pop_front();
      }
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

grpc::Status RaftTransportService::Send(grpc::ServerContext*,
                                        grpc::ServerReader<v1::RaftMessages>* reader,
                                        v1::RaftAck*) {
  v1::RaftMessages batch;
  while (reader->Read(&batch)) {
    for (const auto& bytes : batch.messages()) {
      auto m = consensus::DecodeMessage(bytes);
      if (!m.ok()) {
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                            "undecodable raft message: " + m.status().message());
      }
      deliver_(std::move(m).value());
    }
  }
  return grpc::Status::OK;
}

}  // namespace gojodb::rpc
