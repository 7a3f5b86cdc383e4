// RaftNode: drives one Raft group on a node. It owns a thread that ticks the RawNode,
// steps incoming messages, turns proposals into log entries, persists each Ready
// through the group's RaftLogStore (fsynced before any message that depends on it is
// sent), sends messages through the Transport, applies committed entries to the
// StateMachine and completes the proposals whose entries applied here.
//
// This first version drives one group with its own fsync per Ready; the storage node's
// multi-group loop will share one batch and one fsync across groups (RaftLogStore is
// built for that).
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "core/consensus/raw_node.h"
#include "core/replication/raft_log_store.h"

namespace gojodb::replication {

// The replicated state. Apply is called in log order, once per committed entry, from
// the node's thread. On restart the node replays the log from Applied() + 1.
class StateMachine {
 public:
  virtual ~StateMachine() = default;
  virtual Status Apply(consensus::LogIndex index, std::string_view data) = 0;
  virtual consensus::LogIndex Applied() const = 0;
};

// Carries messages to other members. Send must not block on the network; it may drop
// (Raft retries).
class Transport {
 public:
  virtual ~Transport() = default;
  virtual void Send(std::vector<consensus::Message> messages) = 0;
};

struct RaftNodeOptions {
  consensus::NodeId id;
  uint64_t group = 1;
  // Members of a brand-new group (ignored when the log already exists).
  std::vector<consensus::NodeId> initial_voters;
  std::chrono::milliseconds tick_interval{10};
  int election_tick = 10;
  int heartbeat_tick = 1;
  bool pre_vote = true;
  bool check_quorum = true;
  uint64_t random_seed = 1;
  // Upper bound of entry bytes in one append message (at least one entry is sent): the
  // replication batching knob.
  uint64_t max_size_per_msg = 1 << 20;
};

class RaftNode {
 public:
  // Opens (or bootstraps) the group's log and starts the node's thread. Pointers are not
  // owned and must outlive the node.
  static Result<std::unique_ptr<RaftNode>> Start(const RaftNodeOptions& options,
                                                 storage::Engine* engine, StateMachine* sm,
                                                 Transport* transport);
  ~RaftNode();  // stops the thread; pending proposals fail with UNAVAILABLE

  // Replicates `data`. OK once it is committed and applied on this node. UNAVAILABLE when
  // no leader is known or the node stops; DEADLINE_EXCEEDED when it did not apply in
  // time (it may still apply later: the outcome is unknown, as with any replicated log).
  Status Propose(std::string data, std::chrono::milliseconds timeout);

  // Hands an incoming message to the node. Thread-safe, never blocks on the node.
  void Deliver(consensus::Message message);

  consensus::NodeId Leader() const;
  consensus::NodeId id() const { return options_.id; }

 private:
  RaftNode(const RaftNodeOptions& options, storage::Engine* engine, StateMachine* sm,
           Transport* transport);
  void Loop();
  // One Ready: persist, send, apply, advance. Returns false on a fatal storage error.
  Status HandleReady();

  struct Waiter {
    bool done = false;
    Status status;
  };

  const RaftNodeOptions options_;
  storage::Engine* const engine_;
  StateMachine* const sm_;
  Transport* const transport_;
  std::unique_ptr<RaftLogStore> store_;
  std::unique_ptr<consensus::RawNode> rn_;  // used only by the loop thread

  mutable std::mutex mu_;
  std::condition_variable work_cv_;                         // wakes the loop
  std::condition_variable done_cv_;                         // wakes proposers
  std::deque<consensus::Message> inbox_;                    // GUARDED_BY(mu_)
  std::deque<std::pair<uint64_t, std::string>> proposals_;  // GUARDED_BY(mu_)
  std::map<uint64_t, std::shared_ptr<Waiter>> waiters_;     // GUARDED_BY(mu_)
  uint64_t next_proposal_ = 1;                              // GUARDED_BY(mu_)
  consensus::NodeId leader_;                                // GUARDED_BY(mu_)
  bool stopping_ = false;                                   // GUARDED_BY(mu_)
  Status failed_;                                           // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace gojodb::replication
