// RaftNode: drives one Raft group on a node. It owns a thread that ticks the RawNode,
// steps incoming messages, turns proposals into log entries, persists each Ready
// through the group's RaftLogStore (fsynced before any message that depends on it is
// sent), sends messages through the Transport, applies committed entries to the
// StateMachine and completes the proposals whose entries applied here.
//
// The work is done on a RaftLoop's thread, which may drive many groups of the node and
// persists all their Readies with one write and one fsync per iteration (raft_loop.h).
// A node started without a loop gets one of its own.
//
// Besides proposals it offers linearizable read barriers (ReadIndex), membership
// changes, leadership transfer, and state machine snapshots: every `snapshot_entries`
// applied entries it stores StateMachine::Snapshot() in the log store and compacts the
// log behind it; a follower that needs the compacted entries receives the snapshot and
// the node hands it to StateMachine::Restore.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "core/consensus/raw_node.h"
#include "core/replication/raft_log_store.h"
#include "core/replication/raft_loop.h"

namespace gojodb::replication {

// The replicated state. Apply is called in log order, once per committed entry, from
// the node's thread. On restart the node replays the log from Applied() + 1.
class StateMachine {
 public:
  virtual ~StateMachine() = default;
  virtual Status Apply(consensus::LogIndex index, std::string_view data) = 0;
  // Like Apply, and hands the command's outcome back to its proposer through `result`
  // (never null). A command the state machine refuses (say, a duplicate) is an outcome,
  // not an error: an error here stops the node, as for a failed write.
  virtual Status ApplyCommand(consensus::LogIndex index, std::string_view data,
                              std::string* result) {
    (void)result;
    return Apply(index, data);
  }
  virtual consensus::LogIndex Applied() const = 0;
  // A membership change applied at `index`; `conf` is the configuration it produced.
  // An error stops the node.
  virtual Status ApplyConfState(consensus::LogIndex index, const consensus::ConfState& conf) {
    (void)index;
    (void)conf;
    return Status::OK();
  }

  // The whole state as of Applied(), for a Raft snapshot. UNIMPLEMENTED: the node never
  // snapshots (its log grows without bound).
  virtual Result<std::string> Snapshot() {
    return Status::Unimplemented("this state machine takes no snapshots");
  }
  // Replaces the whole state with a snapshot taken at `index`; afterwards Applied() is
  // `index`.
  virtual Status Restore(consensus::LogIndex index, std::string_view data) {
    (void)index;
    (void)data;
    return Status::Unimplemented("this state machine takes no snapshots");
  }
  // True once after an applied command made the snapshots taken before it unfit to send
  // (a shard's split: an older snapshot would carry the range it gave away). The node
  // then takes a new one for the next member that needs one.
  virtual bool TakeSnapshotOutdated() { return false; }
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
  // Linearizable reads under the leader lease (no heartbeat round while the lease
  // holds; needs check_quorum). Rests on every member's clock running at the same rate
  // within ~10%; a leader whose ticks fall behind its clock voids its lease
  // (docs/architecture/consensus.md, "The lease").
  bool lease_reads = false;
  uint64_t random_seed = 1;
  // Upper bound of entry bytes in one append message (at least one entry is sent): the
  // replication batching knob.
  uint64_t max_size_per_msg = 1 << 20;
  // A member added to a running group: start with an empty log and no membership, and
  // wait for the leader to send the log (or a snapshot). initial_voters is ignored.
  bool join = false;
  // Take a state machine snapshot every this many applied entries (0: never), and keep
  // this many entries behind it for followers that lag a little.
  uint64_t snapshot_entries = 0;
  uint64_t retain_entries = 1000;
  // Bounds in bytes of entry data beside those in entries (0: none): a snapshot also once
  // the entries applied since the last one hold snapshot_bytes, and no more entries kept
  // behind it than hold retain_bytes. Without them a log of large entries (a bulk
  // load's, hundreds of KiB each) stays whole, in memory and on disk, for
  // snapshot_entries entries.
  uint64_t snapshot_bytes = 0;
  uint64_t retain_bytes = 0;
  // The state machine writes its state to the log's engine, through the same write-ahead
  // log, before the snapshot record that follows it: once that record is durable, so is
  // the state. Periodic snapshots then record only where the state is (index, term,
  // membership) and copy no data, and the log is compacted behind them; a snapshot with
  // the data is taken when a follower needs one.
  bool state_in_log_engine = false;
};

// A point-in-time view of the group from this member.
struct GroupStatus {
  consensus::NodeId id;
  consensus::NodeId leader;  // none when unknown
  uint64_t term = 0;
  bool is_leader = false;
  consensus::LogIndex commit;
  consensus::LogIndex applied;
  consensus::LogIndex first_index;                // the log's first entry kept (compaction)
  consensus::LogIndex last_index;                 // and its last
  consensus::LogIndex snapshot_index;             // of the last snapshot taken or installed
  uint64_t snapshot_bytes = 0;                    // the data it holds (state_in_log_engine: 0
                                                  // unless one was taken for a follower)
  uint64_t snapshots_installed = 0;               // received from a leader since start
  consensus::ConfState conf_state;                // as of `applied`
  std::vector<consensus::MemberStatus> progress;  // leader only
};

class RaftNode {
 public:
  // Each waiter has its own condition variable, so a completion wakes its proposer
  // only (not every proposer waiting on the node).
  struct Waiter {
    std::condition_variable cv;
    bool done = false;
    Status status;
    std::string result;
  };

  // Opens (or bootstraps) the group's log and starts the node's thread. Pointers are not
  // owned and must outlive the node.
  static Result<std::unique_ptr<RaftNode>> Start(const RaftNodeOptions& options,
                                                 storage::Engine* engine, StateMachine* sm,
                                                 Transport* transport);
  // The same, driven by a shared loop (whose engine holds the log and whose tick
  // replaces options.tick_interval). `loop` must outlive the node.
  static Result<std::unique_ptr<RaftNode>> Start(const RaftNodeOptions& options, RaftLoop* loop,
                                                 StateMachine* sm, Transport* transport);
  ~RaftNode();  // Stop()

  // Leaves the loop; pending and later requests fail with UNAVAILABLE and later
  // messages are dropped. Afterwards nothing touches the group's log. Idempotent;
  // other threads may keep calling the node's methods meanwhile.
  void Stop();

  // Replicates `data`. OK once it is committed and applied on this node. UNAVAILABLE when
  // no leader is known or the node stops; DEADLINE_EXCEEDED when it did not apply in
  // time (it may still apply later: the outcome is unknown, as with any replicated log).
  // `result`, when given, receives StateMachine::ApplyCommand's outcome.
  Status Propose(std::string data, std::chrono::milliseconds timeout,
                 std::string* result = nullptr);

  // Propose in two steps: Submit queues `data` and returns at once; Wait waits for it
  // as Propose does. Proposals submitted one after another (by one thread, or under a
  // caller's lock) enter the log in that order, which lets a caller order its commands
  // by something it assigns under its own lock (say, a timestamp).
  struct Ticket {
    uint64_t id = 0;
    std::shared_ptr<Waiter> waiter;
    Status status;  // not OK: refused at once (the node failed or is stopping)
  };
  // With `term` (not 0) the proposal is made only if this member leads in that term
  // when its loop takes it; otherwise it fails as NotProposed.
  Ticket Submit(std::string data, uint64_t term = 0);
  Status Wait(Ticket& ticket, std::chrono::milliseconds timeout, std::string* result = nullptr);
  // The term this member leads in, as of its loop's last step; 0 when it does not lead.
  uint64_t LeaderTerm() const;
  // OK once every proposal submitted before the call has applied here, or is known
  // never to apply here (dropped, or replaced in the log by a newer leader's entries):
  // waits until this member applied its log as it stood once the loop took them.
  // DEADLINE_EXCEEDED after `timeout`.
  Status WaitForProposed(std::chrono::milliseconds timeout);
  // Whether a failed Propose/Wait was never proposed (the node was no leader when its
  // loop took the proposal; the Raft core appended nothing): it cannot apply, so it is
  // safe to send again elsewhere. Every other failure's outcome is unknown.
  static bool NotProposed(const Status& s);

  // Proposes a membership change; OK once it applied here. FAILED_PRECONDITION when the
  // group refused it (one change at a time; a change that leaves no voter), and as
  // Propose otherwise.
  Status ProposeConfChange(consensus::ConfChange cc, std::chrono::milliseconds timeout);

  // A linearizable read barrier: OK once this member has applied everything committed
  // before the call, and a quorum confirmed the leader after the call began (ReadIndex).
  // Concurrent barriers share a round: while one round is in flight, new barriers
  // gather for the next.
  // UNAVAILABLE when leadership changes meanwhile or no leader is known.
  // A leader that is its group's only voter answers at once, without the loop, once it
  // has applied an entry of its term (see solo_leader_).
  Status ReadBarrier(std::chrono::milliseconds timeout);

  // Asks the leader (this member) to hand leadership to `to`; returns at once.
  Status TransferLeadership(consensus::NodeId to);

  // Hands an incoming message to the node. Thread-safe, never blocks on the node.
  void Deliver(consensus::Message message);
  // The transport's word on a snapshot this node sent to `to`: a failed one is sent
  // again. Thread-safe.
  void ReportSnapshot(consensus::NodeId to, bool ok);

  consensus::NodeId Leader() const;
  // OK, or why this member stopped (a write to the log failed, say for a full disk).
  Status Health() const;
  consensus::NodeId id() const { return options_.id; }
  GroupStatus GetStatus() const;

 private:
  friend class RaftLoop;
  static Result<std::unique_ptr<RaftNode>> Start(const RaftNodeOptions& options, RaftLoop* loop,
                                                 StateMachine* sm, Transport* transport,
                                                 std::unique_ptr<RaftLoop> own_loop);
  RaftNode(const RaftNodeOptions& options, storage::Engine* engine, StateMachine* sm,
           Transport* transport);

  // The loop's steps, on its thread. Intake takes queued work (false once stopping);
  // StageReady stages the next Ready's writes into the shared batch; after that batch
  // is durable, FinishReady sends, applies and advances; AfterIteration snapshots and
  // publishes the status. Fail stops the node with `s`.
  bool Intake(bool tick);
  bool HasReady() const { return rn_->HasReady(); }
  Status StageReady(storage::WriteBatch* batch, bool* sync);
  Status FinishReady();
  Status AfterIteration();
  void Fail(const Status& s, bool discard_staged = false);
  bool failed() const;

  struct ReadWaiter {
    std::condition_variable cv;
    bool done = false;
    Status status;
    bool indexed = false;  // the ReadState arrived; wait for applied >= index
    consensus::LogIndex index;
  };
  // Registers a read waiter in `queue` (unsent_reads_ or unsent_marks_), wakes the loop
  // and waits for it; DEADLINE_EXCEEDED (`late`) after `timeout`. REQUIRES: lock holds mu_.
  Status AwaitRead(std::unique_lock<std::mutex>& lock, std::vector<uint64_t>* queue,
                   std::chrono::milliseconds timeout, const char* late);
  // Registers a waiter, lets `enqueue` queue the work for the loop (under mu_), and
  // waits until the work applied or `timeout` passed.
  Status Await(const std::function<void(uint64_t id)>& enqueue, std::chrono::milliseconds timeout,
               std::string_view what, std::string* result);
  Ticket Enqueue(const std::function<void(uint64_t id)>& enqueue);  // Await's first half
  Status WaitFor(Ticket& ticket, std::chrono::milliseconds timeout, std::string_view what,
                 std::string* result);
  void Complete(uint64_t id, Status status, std::string result);  // REQUIRES: mu_ held
  void FailAll(const Status& status);                             // REQUIRES: mu_ held
  void FailReads(const Status& status);                           // REQUIRES: mu_ held
  Status ApplyEntry(const consensus::Entry& e);
  // Every snapshot_entries applied entries, or now when `force` (a follower needs one).
  Status MaybeSnapshot(bool force = false);
  void UpdateStatus();
  void MaybeStartReadRound();  // loop thread

  const RaftNodeOptions options_;
  storage::Engine* const engine_;
  StateMachine* const sm_;
  Transport* const transport_;
  std::unique_ptr<RaftLogStore> store_;
  std::unique_ptr<consensus::RawNode> rn_;  // used only by the loop thread
  RaftLoop* loop_ = nullptr;
  std::unique_ptr<RaftLoop> own_loop_;             // when started without a shared loop
  std::optional<consensus::Ready> pending_ready_;  // loop thread: staged, not finished

  mutable std::mutex mu_;
  std::deque<consensus::Message> inbox_;  // GUARDED_BY(mu_)
  struct Proposal {
    uint64_t id = 0;
    std::string data;
    uint64_t term = 0;  // not 0: only in this term
  };
  std::deque<Proposal> proposals_;      // GUARDED_BY(mu_)
  std::vector<uint64_t> unsent_marks_;  // WaitForProposed's read waiters; GUARDED_BY(mu_)
  uint64_t leader_term_ = 0;            // GUARDED_BY(mu_); with leader_ == this member
  // GUARDED_BY(mu_): the loop has applied every entry of its log, and has taken no
  // proposal since (WaitForProposed's quick answer).
  bool caught_up_ = false;
  // GUARDED_BY(mu_): as of the loop's last iteration, this member leads a group of which
  // it is the only voter, no membership change is pending, and it has applied all it
  // committed, up to an entry of its term. No other member can lead before this loop
  // handles its vote request and then its append, and the iteration that does so
  // clears this flag before anything can commit elsewhere; so a read barrier may
  // answer at once while it is set (every write acknowledged before the read applied).
  bool solo_leader_ = false;
  std::map<uint64_t, std::shared_ptr<Waiter>> waiters_;  // GUARDED_BY(mu_)
  // Work the loop runs against the RawNode (conf changes, reads, transfers).
  std::deque<std::function<void()>> tasks_;                       // GUARDED_BY(mu_)
  std::map<uint64_t, std::shared_ptr<ReadWaiter>> read_waiters_;  // GUARDED_BY(mu_)
  // Barriers not yet in a ReadIndex round: all that queue up between two loop
  // iterations share one round (one quorum heartbeat).
  std::vector<uint64_t> unsent_reads_;  // GUARDED_BY(mu_)
  // Loop thread only: round -> the barriers it confirms. One round is in flight at a
  // time; barriers that arrive meanwhile wait in queued_reads_ for the next one.
  std::map<uint64_t, std::vector<uint64_t>> read_rounds_;
  std::vector<uint64_t> queued_reads_;
  std::chrono::steady_clock::time_point round_started_;
  uint64_t next_read_round_ = 1;
  GroupStatus status_;  // GUARDED_BY(mu_)
  // Loop thread only.
  consensus::ConfState conf_state_;
  consensus::LogIndex conf_index_;  // entries at or below it are in conf_state_ already
  consensus::LogIndex applied_;
  consensus::LogIndex snapshot_index_;
  uint64_t snapshot_bytes_ = 0;        // of the stored snapshot's data
  uint64_t bytes_since_snapshot_ = 0;  // data of the entries applied since the last snapshot
  std::chrono::steady_clock::time_point last_tick_;  // lease reads: when we last ticked
  uint64_t snapshots_installed_ = 0;
  uint64_t next_proposal_ = 1;  // GUARDED_BY(mu_)
  consensus::NodeId leader_;    // GUARDED_BY(mu_)
  bool stopping_ = false;       // GUARDED_BY(mu_)
  bool stopped_ = false;        // GUARDED_BY(mu_): Stop() ran
  Status failed_;               // GUARDED_BY(mu_)
};

}  // namespace gojodb::replication
