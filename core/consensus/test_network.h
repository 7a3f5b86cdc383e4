// A network of in-process Raft nodes for unit tests, after etcd's test network:
// messages are delivered synchronously until none are left, and links can be dropped
// (drop/cut/isolate) or message types ignored. Deterministic (seeded).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <vector>

#include "core/consensus/raft.h"
#include "core/consensus/storage.h"

namespace gojodb::consensus::testing {

// Builds the Config tests use: election 10, heartbeat 1, unlimited sizes.
Config TestConfig(uint64_t id, int election, int heartbeat, const Storage* storage);

// A storage pre-populated with a voter set (and optional learners), as a new cluster.
std::unique_ptr<MemoryStorage> NewStorageWithPeers(const std::vector<uint64_t>& voters,
                                                   const std::vector<uint64_t>& learners = {});

struct TestPeer {
  std::unique_ptr<MemoryStorage> storage;
  std::unique_ptr<Raft> raft;  // null: a black hole that swallows messages
};

class Network {
 public:
  // n voters with ids 1..n; `configure` may adjust each node's config.
  explicit Network(int n, const std::function<void(Config*)>& configure = nullptr);
  // Explicit peers (ids 1..peers.size()); a peer with a null raft is a black hole.
  explicit Network(std::vector<TestPeer> peers);

  // Delivers the messages and everything they cause, until the network is quiet.
  void Send(std::vector<Message> msgs);
  void Send(Message m) { Send(std::vector<Message>{std::move(m)}); }
  // Local shortcuts.
  void Campaign(uint64_t id);
  void Propose(uint64_t id, const std::string& data);

  // Drops messages from -> to with probability perc (1.0: all).
  void Drop(uint64_t from, uint64_t to, double perc);
  void Cut(uint64_t a, uint64_t b);
  void Isolate(uint64_t id);
  void Ignore(MessageType t);
  void Recover();

  Raft* raft(uint64_t id) { return peers_.at(id).raft.get(); }
  MemoryStorage* storage(uint64_t id) { return peers_.at(id).storage.get(); }
  std::vector<uint64_t> ids() const;
  // Moves unstable entries of every node to its storage and marks committed entries
  // applied (what an application would do with a Ready).
  void PersistAndApply(uint64_t id);
  // Messages the filters let through, and intercepted ones (if record is set).
  std::vector<Message> Filter(std::vector<Message> msgs);
  void set_intercept(std::function<void(const Message&)> f) { intercept_ = std::move(f); }

 private:
  std::map<uint64_t, TestPeer> peers_;
  std::map<std::pair<uint64_t, uint64_t>, double> dropm_;
  std::set<MessageType> ignorem_;
  std::function<void(const Message&)> intercept_;
  std::mt19937_64 rng_{42};
};

// Takes the messages a node has queued.
std::vector<Message> ReadMessages(Raft* r);
// All log entries as (term, index) pairs, for comparisons.
std::vector<std::pair<uint64_t, uint64_t>> LogIds(const Raft& r);

}  // namespace gojodb::consensus::testing
