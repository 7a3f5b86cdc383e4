#include "tests/sim/raft/simulator.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <vector>

#include "core/consensus/bootstrap.h"
#include "core/consensus/codec.h"
#include "core/consensus/raw_node.h"
#include "tests/sim/raft/checker.h"

namespace gojodb::sim {

using namespace consensus;  // NOLINT: simulation code speaks the library's types

namespace {

constexpr int kElectionTick = 10;
constexpr int kHeartbeatTick = 2;
constexpr const char* kMarker = "heal-marker";

class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed * 0x2545F4914F6CDD1DULL + 0x9E3779B97F4A7C15ULL) {}
  uint64_t Next() {
    uint64_t z = (s_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  uint64_t Uniform(uint64_t n) { return n == 0 ? 0 : Next() % n; }
  bool Chance(double p) { return static_cast<double>(Next() >> 11) * 0x1.0p-53 < p; }
  template <typename T>
  const T& Pick(const std::vector<T>& v) {
    return v[Uniform(v.size())];
  }

 private:
  uint64_t s_;
};

// Per-seed parameters.
struct Params {
  int voters = 3;
  int ids = 4;
  bool pre_vote = false;
  bool check_quorum = false;
  bool lease_reads = false;
  uint64_t max_msg_size = kNoLimit;
  size_t max_inflight = 256;
  double drop = 0;
  double dup = 0;
  uint64_t max_delay = 0;
  double crash = 0;
  double partition = 0;
  double conf_change = 0;
  double transfer = 0;
  double compact = 0;

  std::string ToString() const {
    std::ostringstream os;
    os << "voters=" << voters << " ids=" << ids << " prevote=" << pre_vote
       << " checkquorum=" << check_quorum << " lease=" << lease_reads
       << " maxmsg=" << (max_msg_size == kNoLimit ? 0 : max_msg_size)
       << " inflight=" << max_inflight << " drop=" << drop << " dup=" << dup
       << " delay=" << max_delay << " crash=" << crash << " partition=" << partition
       << " conf=" << conf_change << " transfer=" << transfer << " compact=" << compact;
    return os.str();
  }
};

// One simulated process.
struct Node {
  uint64_t id = 0;
  bool up = false;
  bool stopped = false;  // shut down for good (removed from the group)
  // What survived fsync, and what was written but not yet synced (hard state only:
  // anything else in a Ready forces a sync).
  std::unique_ptr<MemoryStorage> disk;
  std::optional<HardState> unsynced_hs;
  // The running process: its storage view, Raft node and state machine.
  std::unique_ptr<MemoryStorage> mem;
  std::unique_ptr<RawNode> rn;
  uint64_t state = 0;
  LogIndex applied;
  ConfState conf;
  // Hash of the persisted log prefix ending at each index (log matching check).
  std::map<uint64_t, uint64_t> prefix;
  uint64_t incarnation = 0;
};

struct InFlight {
  uint64_t at;   // tick of delivery
  uint64_t seq;  // tie-breaker, assigned in send order
  Message m;
};

std::string EncodeState(uint64_t v) {
  return std::string(reinterpret_cast<const char*>(&v), sizeof v);
}
uint64_t DecodeState(const std::string& s) {
  uint64_t v = 0;
  if (s.size() == sizeof v) std::copy(s.begin(), s.end(), reinterpret_cast<char*>(&v));
  return v;
}

// Copies what a MemoryStorage holds: a process reading its disk after a restart.
std::unique_ptr<MemoryStorage> Clone(const MemoryStorage& from) {
  auto to = std::make_unique<MemoryStorage>();
  Snapshot snap = *from.GetSnapshot();
  if (snap.empty()) {
    to->Bootstrap(snap.metadata.conf_state);
  } else {
    (void)to->ApplySnapshot(snap);
  }
  LogIndex first = *from.FirstIndex(), last = *from.LastIndex();
  if (last >= first) (void)to->Append(*from.Entries(first, last + 1, kNoLimit));
  to->SetHardState(from.GetInitialState()->hard_state);
  return to;
}

class Simulation {
 public:
  Simulation(uint64_t seed, const SimOptions& opt) : seed_(seed), opt_(opt), rng_(seed) {}

  SimResult Run() {
    ChooseParams();
    result_.params = p_.ToString();
    for (int i = 1; i <= p_.ids; ++i) {
      Node& n = nodes_[static_cast<uint64_t>(i)];
      n.id = static_cast<uint64_t>(i);
      n.disk = std::make_unique<MemoryStorage>();
      if (i <= p_.voters) {
        // Founding members; the others start empty and learn the group from the log.
        std::vector<NodeId> voters;
        for (int v = 1; v <= p_.voters; ++v) voters.push_back(NodeId(static_cast<uint64_t>(v)));
        Fail(Bootstrap(n.disk.get(), voters));
      }
      if (!Start(n)) return Finish();
    }
    for (now_ = 1; now_ <= opt_.steps && status_.ok(); ++now_) ChaosTick();
    if (status_.ok()) Heal();
    return Finish();
  }

 private:
  void ChooseParams() {
    p_.voters = 3 + static_cast<int>(rng_.Uniform(3));
    p_.ids = std::min(6, p_.voters + 1 + static_cast<int>(rng_.Uniform(2)));
    p_.pre_vote = rng_.Chance(0.5);
    p_.check_quorum = rng_.Chance(0.5);
    p_.lease_reads = p_.check_quorum && rng_.Chance(0.5);
    p_.max_msg_size = rng_.Chance(0.5) ? kNoLimit : 64 + rng_.Uniform(256);
    p_.max_inflight = rng_.Chance(0.5) ? 256 : 1 + rng_.Uniform(4);
    p_.drop = rng_.Chance(0.3) ? 0 : 0.02 * static_cast<double>(rng_.Uniform(10));
    p_.dup = rng_.Chance(0.5) ? 0 : 0.05;
    p_.max_delay = rng_.Uniform(4);
    p_.crash = rng_.Chance(0.3) ? 0 : 0.01;
    p_.partition = rng_.Chance(0.3) ? 0 : 0.03;
    p_.conf_change = rng_.Chance(0.4) ? 0 : 0.03;
    p_.transfer = rng_.Chance(0.5) ? 0 : 0.02;
    p_.compact = rng_.Chance(0.3) ? 0 : 0.05;
  }

  SimResult Finish() {
    if (!status_.ok()) {
      result_.ok = false;
      result_.failure = "tick " + std::to_string(now_) + ": " + status_.message();
    }
    result_.leaders = checker_.leaders();
    result_.reads = checker_.reads_checked();
    return result_;
  }

  void Fail(const Status& s) {
    if (status_.ok() && !s.ok()) status_ = s;
  }

  void Log(const std::string& s) {
    if (opt_.verbose)
      std::printf("[t=%llu] %s\n", static_cast<unsigned long long>(now_), s.c_str());
  }

  std::string Describe(Node& n) {
    std::ostringstream os;
    os << "node " << n.id << (n.up ? " up" : " down") << (n.stopped ? " stopped" : "");
    if (n.up) {
      const Raft& r = n.rn->raft();
      os << " " << StateTypeName(r.state()) << " term=" << r.term() << " lead=" << r.lead()
         << " commit=" << r.log().committed() << " applied=" << r.log().applied()
         << " last=" << r.log().LastIndex() << " first=" << r.log().FirstIndex()
         << " cfg=" << r.tracker().config.DebugString() << " promotable=" << r.Promotable();
      if (r.state() == StateType::kLeader) {
        for (const auto& [pid, pr] : r.tracker().progress)
          os << "\n    " << pid << ": " << pr.DebugString();
      }
    }
    return os.str();
  }

  // ---- Processes ----

  bool Start(Node& n) {
    n.mem = Clone(*n.disk);
    Config c;
    c.id = NodeId(n.id);
    c.election_tick = kElectionTick;
    c.heartbeat_tick = kHeartbeatTick;
    c.storage = n.mem.get();
    c.max_size_per_msg = p_.max_msg_size;
    c.max_inflight_msgs = p_.max_inflight;
    c.pre_vote = p_.pre_vote;
    c.check_quorum = p_.check_quorum;
    c.read_only_option = p_.lease_reads ? ReadOnlyOption::kLeaseBased : ReadOnlyOption::kSafe;
    c.random_seed = rng_.Next();
    auto rn = RawNode::Create(c);
    if (!rn.ok()) {
      Fail(rn.status().WithContext("restart of node " + std::to_string(n.id)));
      return false;
    }
    n.rn = std::move(rn).value();
    n.up = true;
    ++n.incarnation;
    // The state machine restarts from the snapshot; the log re-applies the rest.
    Snapshot snap = *n.mem->GetSnapshot();
    n.state = snap.empty() ? 0 : DecodeState(snap.data);
    n.applied = snap.metadata.index;
    n.conf = snap.metadata.conf_state;
    // Rebuild the prefix hashes of the persisted log.
    n.prefix.clear();
    auto base = checker_.PrefixOf(snap.metadata.index, snap.metadata.term);
    if (!base.ok()) {
      Fail(base.status());
      return false;
    }
    n.prefix[snap.metadata.index.value()] = *base;
    LogIndex first = *n.mem->FirstIndex(), last = *n.mem->LastIndex();
    if (last >= first) Persisted(n, *n.mem->Entries(first, last + 1, kNoLimit));
    return true;
  }

  void Crash(Node& n) {
    Log("crash " + std::to_string(n.id));
    ++result_.crashes;
    n.up = false;
    n.rn.reset();
    n.mem.reset();
    // Unsynced writes may or may not have reached the disk.
    if (n.unsynced_hs && rng_.Chance(0.5)) n.disk->SetHardState(*n.unsynced_hs);
    n.unsynced_hs.reset();
  }

  void Persisted(Node& n, const std::vector<Entry>& ents) {
    if (ents.empty()) return;
    n.prefix.erase(n.prefix.lower_bound(ents.front().index.value()), n.prefix.end());
    auto prev = n.prefix.find(ents.front().index.value() - 1);
    if (prev == n.prefix.end()) {
      Fail(Status::Internal("node " + std::to_string(n.id) + " persisted entries after a gap"));
      return;
    }
    uint64_t h = prev->second;
    for (const Entry& e : ents) {
      h = Mix(Mix(Mix(h, e.term.value()), static_cast<uint64_t>(e.type)), HashBytes(e.data));
      n.prefix[e.index.value()] = h;
      Fail(checker_.OnPersisted(NodeId(n.id), e.index, e.term, h));
    }
  }

  // Handles every Ready of a node: persist (sync if asked), send, apply, advance.
  void HandleReady(Node& n) {
    while (n.up && status_.ok() && n.rn->HasReady()) {
      Ready rd = n.rn->GetReady();
      const Raft& r = n.rn->raft();
      checker_.ObserveTerm(r.term());
      if (rd.soft_state && rd.soft_state->state == StateType::kLeader) {
        Log("node " + std::to_string(n.id) + " leader of term " + std::to_string(r.term().value()));
        Fail(checker_.OnNewLeader(NodeId(n.id), r.term(), r.log()));
      }
      // 1. Persist.
      if (!rd.snapshot.empty()) {
        Fail(n.mem->ApplySnapshot(rd.snapshot));
        n.prefix.clear();
        auto base = checker_.PrefixOf(rd.snapshot.metadata.index, rd.snapshot.metadata.term);
        if (!base.ok()) return Fail(base.status());
        n.prefix[rd.snapshot.metadata.index.value()] = *base;
      }
      if (!rd.entries.empty()) {
        Fail(n.mem->Append(rd.entries));
        Persisted(n, rd.entries);
      }
      if (!rd.hard_state.empty()) n.mem->SetHardState(rd.hard_state);
      if (rd.must_sync) {
        // fsync: the disk catches up with everything written so far.
        if (!rd.snapshot.empty()) Fail(n.disk->ApplySnapshot(rd.snapshot));
        if (!rd.entries.empty()) Fail(n.disk->Append(rd.entries));
        n.disk->SetHardState(n.mem->GetInitialState()->hard_state);
        n.unsynced_hs.reset();
      } else if (!rd.hard_state.empty()) {
        n.unsynced_hs = rd.hard_state;
      }
      // 2. Send.
      for (Message& m : rd.messages) Send(n, std::move(m));
      // 3. Apply.
      if (!rd.snapshot.empty()) {
        n.state = DecodeState(rd.snapshot.data);
        n.applied = rd.snapshot.metadata.index;
        n.conf = rd.snapshot.metadata.conf_state;
        Fail(checker_.OnSnapshotInstalled(NodeId(n.id), n.applied, n.state));
      }
      for (const Entry& e : rd.committed_entries) {
        if (e.index != n.applied + 1) {
          return Fail(Status::Internal("node " + std::to_string(n.id) + " was handed entry " +
                                       std::to_string(e.index.value()) + " after applying " +
                                       std::to_string(n.applied.value())));
        }
        if (e.type == EntryType::kConfChange) {
          auto cc = DecodeConfChange(e.data);
          if (!cc.ok()) return Fail(cc.status());
          auto cs = n.rn->ApplyConfChange(*cc);
          if (cs.ok()) n.conf = *cs;  // an invalid change is a no-op on every node alike
        }
        n.state = Mix(Mix(Mix(n.state, e.index.value()), e.term.value()), HashBytes(e.data));
        n.applied = e.index;
        ++result_.applied;
        if (e.data == kMarker) marker_applied_ = true;
        Fail(checker_.OnApplied(NodeId(n.id), e.index, e.term, n.state));
      }
      for (const ReadState& rs : rd.read_states)
        Fail(checker_.OnReadState(NodeId(n.id), rs.context, rs.index));
      // 4. Advance.
      n.rn->Advance();
    }
  }

  // ---- Network ----

  bool Cut(uint64_t from, uint64_t to) const { return cuts_.count({from, to}) > 0; }

  // `sender` is the node whose Ready holds m (m.from may differ: a forwarded
  // proposal keeps its original proposer).
  void Send(Node& sender, Message m) {
    uint64_t from = sender.id, to = m.to.value();
    bool lost = Cut(from, to) || rng_.Chance(drop_);
    if (m.type == MessageType::kSnap) ++result_.snapshots_sent;
    if (lost) {
      // A real transport notices failures; report some of them.
      if (m.type == MessageType::kSnap) {
        sender.rn->ReportSnapshot(m.to, SnapshotStatus::kFailure);
      } else if (rng_.Chance(0.3)) {
        sender.rn->ReportUnreachable(m.to);
      }
      return;
    }
    int copies = rng_.Chance(dup_) ? 2 : 1;
    for (int i = 0; i < copies; ++i) {
      inflight_.push_back(InFlight{now_ + rng_.Uniform(max_delay_ + 1), seq_++, m});
    }
  }

  void Deliver() {
    // Delivers every message due by now, in random order; messages sent meanwhile
    // with no delay are delivered too, up to a bound.
    for (int round = 0; round < 64 && status_.ok(); ++round) {
      std::vector<InFlight> due;
      std::vector<InFlight> later;
      for (InFlight& f : inflight_) (f.at <= now_ ? due : later).push_back(std::move(f));
      inflight_ = std::move(later);
      if (due.empty()) return;
      for (size_t i = due.size(); i > 1; --i)
        std::swap(due[i - 1], due[rng_.Uniform(i)]);  // reorder
      for (InFlight& f : due) {
        Node& to = nodes_[f.m.to.value()];
        bool snap = f.m.type == MessageType::kSnap;
        NodeId from = f.m.from;
        if (opt_.verbose && healing_ && f.m.type != MessageType::kHeartbeat &&
            f.m.type != MessageType::kHeartbeatResp) {
          Log(std::string("deliver ") + MessageTypeName(f.m.type) + " " +
              std::to_string(from.value()) + "->" + std::to_string(f.m.to.value()) + " term=" +
              std::to_string(f.m.term.value()) + " index=" + std::to_string(f.m.index.value()) +
              " logterm=" + std::to_string(f.m.log_term.value()) + (f.m.reject ? " reject" : "") +
              " ents=" + std::to_string(f.m.entries.size()));
        }
        if (!to.up) {
          // The transport fails to stream a snapshot to a dead node, and says so.
          if (snap && nodes_[from.value()].up) {
            nodes_[from.value()].rn->ReportSnapshot(f.m.to, SnapshotStatus::kFailure);
            HandleReady(nodes_[from.value()]);
          }
          continue;
        }
        (void)to.rn->Step(std::move(f.m));
        HandleReady(to);
        if (snap && nodes_[from.value()].up) {
          nodes_[from.value()].rn->ReportSnapshot(to.rn->raft().id(), SnapshotStatus::kFinish);
          HandleReady(nodes_[from.value()]);
        }
        if (!status_.ok()) return;
      }
    }
  }

  // ---- Events ----

  std::vector<uint64_t> UpIds() const {
    std::vector<uint64_t> out;
    for (const auto& [id, n] : nodes_) {
      if (n.up) out.push_back(id);
    }
    return out;
  }

  Node* Leader() {
    Node* best = nullptr;
    for (auto& [id, n] : nodes_) {
      if (!n.up || n.rn->raft().state() != StateType::kLeader) continue;
      if (best == nullptr || n.rn->raft().term() > best->rn->raft().term()) best = &n;
    }
    return best;
  }

  void TickAll() {
    for (auto& [id, n] : nodes_) {
      if (!n.up) continue;
      n.rn->Tick();
      HandleReady(n);
      const Raft& r = n.rn->raft();
      checker_.ObserveTerm(r.term());
      if (r.state() == StateType::kLeader) Fail(checker_.OnLeader(r.term(), NodeId(id)));
    }
  }

  void Propose(const std::string& data) {
    auto ids = UpIds();
    if (ids.empty()) return;
    Node& n = nodes_[rng_.Pick(ids)];
    (void)n.rn->Propose(data);
    HandleReady(n);
  }

  void ChangePartition() {
    cuts_.clear();
    auto ids = UpIds();
    switch (rng_.Uniform(4)) {
      case 0:
        Log("heal partitions");
        break;
      case 1: {  // isolate one node
        uint64_t victim = rng_.Uniform(p_.ids) + 1;
        for (int i = 1; i <= p_.ids; ++i) {
          if (static_cast<uint64_t>(i) == victim) continue;
          cuts_.insert({victim, static_cast<uint64_t>(i)});
          cuts_.insert({static_cast<uint64_t>(i), victim});
        }
        Log("isolate " + std::to_string(victim));
        break;
      }
      case 2: {  // split in two groups
        std::vector<int> side(static_cast<size_t>(p_.ids) + 1);
        for (int i = 1; i <= p_.ids; ++i)
          side[static_cast<size_t>(i)] = static_cast<int>(rng_.Uniform(2));
        for (int a = 1; a <= p_.ids; ++a) {
          for (int b = 1; b <= p_.ids; ++b) {
            if (side[static_cast<size_t>(a)] != side[static_cast<size_t>(b)]) {
              cuts_.insert({static_cast<uint64_t>(a), static_cast<uint64_t>(b)});
            }
          }
        }
        Log("split partition");
        break;
      }
      default: {  // random one-way cuts
        int k = 1 + static_cast<int>(rng_.Uniform(4));
        for (int i = 0; i < k; ++i) {
          uint64_t a = rng_.Uniform(p_.ids) + 1, b = rng_.Uniform(p_.ids) + 1;
          if (a != b) cuts_.insert({a, b});
        }
        Log("asymmetric cuts");
        break;
      }
    }
  }

  void ConfChangeEvent() {
    Node* l = Leader();
    if (l == nullptr) return;
    const TrackerConfig& cfg = l->rn->raft().tracker().config;
    ConfChange cc;
    if (cfg.voters.joint()) {
      if (cfg.auto_leave) return;
      Log("propose leave joint");
      (void)l->rn->ProposeConfChange(cc);  // empty: leave
      ++result_.conf_changes;
      HandleReady(*l);
      return;
    }
    std::vector<NodeId> voters(cfg.voters.incoming.ids().begin(), cfg.voters.incoming.ids().end());
    std::vector<NodeId> learners(cfg.learners.begin(), cfg.learners.end());
    std::vector<NodeId> outsiders;
    for (int i = 1; i <= p_.ids; ++i) {
      NodeId id(static_cast<uint64_t>(i));
      if (!cfg.voters.contains(id) && !cfg.learners.count(id)) outsiders.push_back(id);
    }
    auto add = [&](ConfChangeType t, NodeId id) { cc.changes.push_back(ConfChangeSingle{t, id}); };
    switch (rng_.Uniform(6)) {
      case 0:
        if (outsiders.empty()) return;
        add(ConfChangeType::kAddLearnerNode, rng_.Pick(outsiders));
        break;
      case 1:
        if (!learners.empty()) {
          add(ConfChangeType::kAddNode, rng_.Pick(learners));
        } else if (!outsiders.empty()) {
          add(ConfChangeType::kAddNode, rng_.Pick(outsiders));
        } else {
          return;
        }
        break;
      case 2:
        if (voters.size() <= 1) return;
        add(ConfChangeType::kRemoveNode, rng_.Pick(voters));
        break;
      case 3:
        if (voters.size() <= 1) return;
        add(ConfChangeType::kAddLearnerNode, rng_.Pick(voters));  // demote
        break;
      default: {  // replace a voter, through a joint config
        if (outsiders.empty() && learners.empty()) return;
        NodeId in = !learners.empty() && rng_.Chance(0.5)
                        ? rng_.Pick(learners)
                        : (outsiders.empty() ? rng_.Pick(learners) : rng_.Pick(outsiders));
        add(ConfChangeType::kAddNode, in);
        add(ConfChangeType::kRemoveNode, rng_.Pick(voters));
        cc.transition =
            rng_.Chance(0.5) ? ConfChangeTransition::kAuto : ConfChangeTransition::kJointExplicit;
        break;
      }
    }
    std::ostringstream os;
    os << "propose conf change on " << l->id << ":";
    for (auto& c : cc.changes) os << " " << static_cast<int>(c.type) << "/" << c.node_id;
    Log(os.str());
    (void)l->rn->ProposeConfChange(cc);
    ++result_.conf_changes;
    HandleReady(*l);
  }

  void TransferEvent() {
    Node* l = Leader();
    if (l == nullptr) return;
    auto voters = l->rn->raft().tracker().VoterNodes();
    NodeId to = rng_.Pick(voters);
    Log("transfer leadership " + std::to_string(l->id) + " -> " + std::to_string(to.value()));
    (void)l->rn->TransferLeadership(to);
    HandleReady(*l);
  }

  void CompactEvent(Node& n) {
    LogIndex snap_index = n.mem->GetSnapshot()->metadata.index;
    if (n.applied <= snap_index + 4) return;
    // Snapshots are written durably when taken: both the process view and the disk.
    std::string data = EncodeState(n.state);
    for (MemoryStorage* s : {n.mem.get(), n.disk.get()}) {
      auto snap = s->CreateSnapshot(n.applied, &n.conf, data);
      if (!snap.ok()) return Fail(snap.status().WithContext("create snapshot"));
      LogIndex keep = LogIndex(rng_.Uniform(4));
      LogIndex compact_to =
          n.applied - std::min<uint64_t>(keep.value(), n.applied - snap_index - 1);
      Fail(s->Compact(compact_to));
    }
    Log("node " + std::to_string(n.id) + " compacted to " + std::to_string(n.applied.value()));
  }

  void ChaosTick() {
    drop_ = p_.drop;
    dup_ = p_.dup;
    max_delay_ = p_.max_delay;
    TickAll();
    if (rng_.Chance(0.4)) Propose("p" + std::to_string(next_prop_++));
    if (rng_.Chance(0.05)) {
      auto ids = UpIds();
      if (!ids.empty()) {
        Node& n = nodes_[rng_.Pick(ids)];
        std::string ctx = "r" + std::to_string(next_read_++);
        checker_.OnReadIssued(ctx);
        (void)n.rn->ReadIndex(ctx);
        HandleReady(n);
      }
    }
    if (rng_.Chance(p_.partition)) ChangePartition();
    if (rng_.Chance(p_.crash)) {
      auto ids = UpIds();
      if (!ids.empty()) Crash(nodes_[rng_.Pick(ids)]);
    }
    for (auto& [id, n] : nodes_) {
      if (!n.up && !n.stopped && rng_.Chance(0.05)) {
        Log("restart " + std::to_string(id));
        if (!Start(n)) return;
      }
    }
    if (rng_.Chance(p_.conf_change)) ConfChangeEvent();
    if (rng_.Chance(p_.transfer)) TransferEvent();
    if (rng_.Chance(p_.compact)) {
      auto ids = UpIds();
      if (!ids.empty()) CompactEvent(nodes_[rng_.Pick(ids)]);
    }
    Deliver();
  }

  // An operator shuts down a node once its removal is complete: the most advanced
  // node's (non-joint) config does not include it and every member of that config
  // has applied it. A stopped node that shows up in a member's config again (a
  // pending change re-added it) is started again.
  void StopRemovedNodes() {
    Node* most = nullptr;
    for (auto& [id, n] : nodes_) {
      if (n.up &&
          (most == nullptr || n.rn->raft().log().applied() > most->rn->raft().log().applied()))
        most = &n;
    }
    if (most == nullptr) return;
    const TrackerConfig cfg = most->rn->raft().tracker().config;  // a copy: `most` may be stopped
    auto member = [](const TrackerConfig& c, uint64_t id) {
      return c.voters.contains(NodeId(id)) || c.learners.count(NodeId(id)) > 0;
    };
    for (auto& [id, n] : nodes_) {
      if (!n.stopped) continue;
      for (auto& [oid, o] : nodes_) {
        if (o.up && member(o.rn->raft().tracker().config, id)) {
          Log("start re-added node " + std::to_string(id));
          n.stopped = false;
          if (!Start(n)) return;
          break;
        }
      }
    }
    if (cfg.voters.joint()) return;
    for (auto& [id, n] : nodes_) {
      if (member(cfg, id) && (!n.up || !(n.rn->raft().tracker().config == cfg))) return;
    }
    for (auto& [id, n] : nodes_) {
      if (n.stopped || member(cfg, id)) continue;
      Log("stop removed node " + std::to_string(id));
      if (n.up) Crash(n);
      n.stopped = true;
    }
  }

  // Heals the network, restarts crashed members, stops removed ones, and requires a
  // leader to commit a new entry within liveness_ticks.
  void Heal() {
    Log("final heal");
    healing_ = true;
    cuts_.clear();
    drop_ = 0;
    dup_ = 0;
    for (auto& [id, n] : nodes_) {
      if (!n.up && !n.stopped && !Start(n)) return;
    }
    uint64_t healed_at = now_;
    for (; now_ <= healed_at + opt_.liveness_ticks && status_.ok(); ++now_) {
      StopRemovedNodes();
      TickAll();
      if ((now_ - healed_at) % 5 == 1) {
        if (Node* l = Leader()) {
          (void)l->rn->Propose(kMarker);
          HandleReady(*l);
        }
      }
      Deliver();
      if (marker_applied_) break;
    }
    result_.ticks = now_;
    if (status_.ok() && !marker_applied_) {
      for (auto& [id, n] : nodes_) Log(Describe(n));
      Fail(Status::Internal("liveness: no entry committed within " +
                            std::to_string(opt_.liveness_ticks) +
                            " ticks after the network healed"));
    }
  }

  uint64_t seed_;
  SimOptions opt_;
  Rng rng_;
  Params p_;
  std::map<uint64_t, Node> nodes_;
  std::vector<InFlight> inflight_;
  std::set<std::pair<uint64_t, uint64_t>> cuts_;
  double drop_ = 0, dup_ = 0;
  uint64_t max_delay_ = 0;
  uint64_t seq_ = 0;
  uint64_t now_ = 0;
  uint64_t next_prop_ = 0, next_read_ = 0;
  bool marker_applied_ = false;
  bool healing_ = false;
  Checker checker_;
  Status status_;
  SimResult result_;
};

}  // namespace

SimResult RunSimulation(uint64_t seed, const SimOptions& options) {
  return Simulation(seed, options).Run();
}

}  // namespace gojodb::sim
