// Config: the parameters of one Raft node.
#pragma once

#include <cstdint>

#include "core/consensus/read_only.h"
#include "core/consensus/storage.h"
#include "internal/status.h"

namespace gojodb::consensus {

struct Config {
  // This node's id; must not be zero.
  NodeId id;
  // Ticks a follower waits without hearing from a leader before campaigning; the
  // actual timeout is drawn at random from [election_tick, 2*election_tick).
  int election_tick = 10;
  // Ticks between leader heartbeats. REQUIRES: heartbeat_tick < election_tick.
  int heartbeat_tick = 1;
  // The log; not owned, must outlive the node.
  const Storage* storage = nullptr;
  // The last index already applied by the state machine (on restart).
  LogIndex applied;
  // Upper bound of entry bytes in one MsgApp (at least one entry is always sent).
  uint64_t max_size_per_msg = 1 << 20;
  // Upper bound of committed entry bytes handed out in one Ready.
  uint64_t max_committed_size_per_ready = 64 << 20;
  // Upper bound of bytes of uncommitted entries on a leader; proposals beyond it are
  // dropped (0: no limit).
  uint64_t max_uncommitted_entries_size = 0;
  // Inflight window per follower in kReplicate, in messages and bytes (0: no limit).
  size_t max_inflight_msgs = 256;
  uint64_t max_inflight_bytes = 0;
  // The leader steps down if it has not heard from a quorum within an election
  // timeout; followers that heard from a leader within one ignore vote requests.
  bool check_quorum = false;
  // Runs a pre-election that does not bump terms, so a rejoining partitioned node
  // cannot disrupt the group (§9.6 of the Raft thesis).
  bool pre_vote = false;
  ReadOnlyOption read_only_option = ReadOnlyOption::kSafe;
  // Ticks subtracted from the lease for clock drift between nodes (lease reads).
  // Default (-1): max(1, election_tick / 10), i.e. tick rates within ~10%.
  int lease_drift_ticks = -1;
  // Followers drop proposals instead of forwarding them to the leader.
  bool disable_proposal_forwarding = false;
  // Seed of the only randomness in the core (election timeouts).
  uint64_t random_seed = 1;

  Status Validate() const;
};

}  // namespace gojodb::consensus
