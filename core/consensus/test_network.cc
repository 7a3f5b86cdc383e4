#include "core/consensus/test_network.h"

#include <deque>

#include "core/consensus/codec.h"

namespace gojodb::consensus::testing {

Config TestConfig(uint64_t id, int election, int heartbeat, const Storage* storage) {
  Config c;
  c.id = NodeId(id);
  c.election_tick = election;
  c.heartbeat_tick = heartbeat;
  c.storage = storage;
  c.max_size_per_msg = kNoLimit;
  c.max_inflight_msgs = 256;
  c.random_seed = 7;
  return c;
}

std::unique_ptr<MemoryStorage> NewStorageWithPeers(const std::vector<uint64_t>& voters,
                                                   const std::vector<uint64_t>& learners) {
  auto s = std::make_unique<MemoryStorage>();
  ConfState cs;
  for (uint64_t v : voters) cs.voters.push_back(NodeId(v));
  for (uint64_t l : learners) cs.learners.push_back(NodeId(l));
  s->Bootstrap(cs);
  return s;
}

Network::Network(int n, const std::function<void(Config*)>& configure) {
  std::vector<uint64_t> voters;
  for (int i = 1; i <= n; ++i) voters.push_back(static_cast<uint64_t>(i));
  for (uint64_t id : voters) {
    TestPeer p;
    p.storage = NewStorageWithPeers(voters);
    Config c = TestConfig(id, 10, 1, p.storage.get());
    if (configure) configure(&c);
    auto r = Raft::Create(c);
    if (!r.ok()) std::abort();
    p.raft = std::move(r).value();
    peers_.emplace(id, std::move(p));
  }
}

Network::Network(std::vector<TestPeer> peers) {
  uint64_t id = 1;
  for (auto& p : peers) peers_.emplace(id++, std::move(p));
}

std::vector<uint64_t> Network::ids() const {
  std::vector<uint64_t> out;
  for (const auto& [id, p] : peers_) out.push_back(id);
  return out;
}

std::vector<Message> ReadMessages(Raft* r) {
  std::vector<Message> out;
  out.swap(r->msgs());
  return out;
}

std::vector<Message> Network::Filter(std::vector<Message> msgs) {
  std::vector<Message> out;
  for (Message& m : msgs) {
    if (ignorem_.count(m.type)) continue;
    if (m.type == MessageType::kHup) std::abort();  // hups never go over the network
    auto it = dropm_.find({m.from.value(), m.to.value()});
    if (it != dropm_.end() && std::uniform_real_distribution<double>(0, 1)(rng_) < it->second)
      continue;
    if (intercept_) intercept_(m);
    out.push_back(std::move(m));
  }
  return out;
}

void Network::Send(std::vector<Message> msgs) {
  std::deque<Message> q(msgs.begin(), msgs.end());
  while (!q.empty()) {
    Message m = std::move(q.front());
    q.pop_front();
    auto it = peers_.find(m.to.value());
    if (it == peers_.end() || it->second.raft == nullptr) continue;  // black hole
    Raft* r = it->second.raft.get();
    (void)r->Step(m);
    for (Message& out : Filter(ReadMessages(r))) q.push_back(std::move(out));
  }
}

void Network::Campaign(uint64_t id) {
  Message m;
  m.type = MessageType::kHup;
  m.from = NodeId(id);
  m.to = NodeId(id);
  Send(m);
}

void Network::Propose(uint64_t id, const std::string& data) {
  Message m;
  m.type = MessageType::kProp;
  m.from = NodeId(id);
  m.to = NodeId(id);
  Entry e;
  e.data = data;
  m.entries.push_back(e);
  Send(m);
}

void Network::Drop(uint64_t from, uint64_t to, double perc) { dropm_[{from, to}] = perc; }

void Network::Cut(uint64_t a, uint64_t b) {
  Drop(a, b, 2.0);
  Drop(b, a, 2.0);
}

void Network::Isolate(uint64_t id) {
  for (const auto& [other, p] : peers_) {
    if (other != id) Cut(id, other);
  }
}

void Network::Ignore(MessageType t) { ignorem_.insert(t); }

void Network::Recover() {
  dropm_.clear();
  ignorem_.clear();
}

void Network::PersistAndApply(uint64_t id) {
  TestPeer& p = peers_.at(id);
  Raft* r = p.raft.get();
  RaftLog& log = r->mutable_log();
  if (auto snap = log.PendingSnapshot()) {
    Snapshot s = *snap;
    (void)p.storage->ApplySnapshot(s);
    log.StableSnapTo(s.metadata.index);
  }
  auto ents = log.UnstableEntries();
  if (!ents.empty()) {
    (void)p.storage->Append(ents);
    log.StableTo(ents.back().index, ents.back().term);
  }
  p.storage->SetHardState(r->GetHardState());
  for (const Entry& e : log.NextCommittedEntries()) {
    if (e.type == EntryType::kConfChange) {
      auto cc = DecodeConfChange(e.data);
      if (!cc.ok()) std::abort();
      (void)r->ApplyConfChange(*cc);
    }
    r->AppliedTo(e.index, 0);
  }
}

std::vector<std::pair<uint64_t, uint64_t>> LogIds(const Raft& r) {
  std::vector<std::pair<uint64_t, uint64_t>> out;
  for (const Entry& e : r.log().AllEntries()) out.emplace_back(e.term.value(), e.index.value());
  return out;
}

}  // namespace gojodb::consensus::testing
