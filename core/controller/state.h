// The controller's replicated state and the commands that change it.
//
// A command is a JSON object {"op": ..., ...} built by the functions in `cmd`. Apply is
// deterministic: on every member the same command against the same state makes the
// same change, or refuses it with the same Status (the command's outcome, not an
// error of the member). Records are addressed by keys (RecordKeys) so that the state
// machine persists only what a command touched. See docs/architecture/controller.md.
//
// Record keys: "g" (globals), "m/<id>" members, "n/<id>" storage nodes, "s/<id>"
// shards, "t/<id>" tenants, "c/<tenant>/<name>" collections, "d/<id>" the rows of a
// dropped collection or index waiting to be deleted. The prefixes "u/" (users),
// "r/" (roles), "q/" (resource groups) and "l/" (lifecycle policies) are reserved for
// the records later capabilities add; a binary that meets a record it does not know
// refuses to load rather than drop it.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/controller/placement.h"
#include "internal/status.h"

namespace gojodb::controller {

// A controller member's addresses (its Raft membership itself lives in the Raft log).
struct Member {
  uint64_t id = 0;
  std::string grpc_addr;
  std::string http_addr;
  bool operator==(const Member&) const = default;
};

struct NodeRecord {
  uint64_t id = 0;
  std::string grpc_addr;
  std::string http_addr;
  uint64_t capacity_bytes = 0;
  std::map<std::string, std::string> labels;  // "zone" is used by placement
  AdminState admin = AdminState::kActive;
  bool operator==(const NodeRecord&) const = default;
};

struct Epoch {
  uint64_t conf_ver = 1;  // bumped by replica changes
  uint64_t version = 1;   // bumped by splits and merges
  bool operator==(const Epoch&) const = default;
};

struct Replica {
  uint64_t node = 0;
  bool learner = false;
  bool operator==(const Replica&) const = default;
};

// A shard covers [start_key, end_key) of the ordered keyspace; an empty end_key is the
// end of the keyspace.
struct ShardRecord {
  uint64_t id = 0;
  std::string start_key;
  std::string end_key;
  Epoch epoch;
  std::vector<Replica> replicas;
  uint64_t leader = 0;  // a hint; 0 when unknown
  bool operator==(const ShardRecord&) const = default;
};

struct TenantRecord {
  uint32_t id = 0;
  std::string name;
  bool operator==(const TenantRecord&) const = default;
};

// An index's life (docs/architecture/documents.md, "Index builds and drops"):
//   delete_only  writers delete the entries of the documents they change but add none
//             (so that no router adds an entry another, unaware of the index, would
//             leave behind); queries do not use it
//   building  writers keep its entries and enforce its uniqueness; queries do not use it
//   public    complete for reads at or after usable_from_ts
//   failed    the build found two documents with one value of a unique index (error
//             says which); writers ignore it
//   dropping  queries no longer use it; writers still keep it until it is removed
enum class IndexState : uint8_t { kBuilding, kPublic, kFailed, kDropping, kDeleteOnly };
const char* IndexStateName(IndexState s);
std::optional<IndexState> ParseIndexState(std::string_view s);

struct IndexDef {
  std::string name;
  std::vector<std::string> fields;
  bool unique = false;
  uint32_t id = 0;  // its entries' rows live under this id (collection ids' space)
  IndexState state = IndexState::kPublic;
  uint64_t usable_from_ts = 0;  // public: reads below it may not find every document
  std::string build_resume;     // building: the user keys up to it have their entries
  std::string error;            // failed: why
  bool operator==(const IndexDef&) const = default;
};

struct CollectionRecord {
  uint32_t tenant_id = 0;
  uint32_t id = 0;
  std::string name;
  std::string schema_json;  // empty when none
  std::vector<IndexDef> indexes;
  uint64_t created_ms = 0;
  // A router that read this record at timestamp T writes and plans with it only below
  // T + schema_lease_ms (in physical milliseconds); an index change waits that long
  // before it relies on every writer knowing it. Fixed when the collection is created.
  uint64_t schema_lease_ms = 10000;
  // Raised by every change of the collection's indexes.
  uint64_t schema_version = 1;
  bool operator==(const CollectionRecord&) const = default;
};

// The rows of a dropped collection or index (its id), to be deleted from every shard
// once the GC safe point reaches lease_end_ts: no write to them can commit and no read
// of them can succeed from then on (docs/architecture/documents.md, "Reclaiming
// dropped collections and indexes").
struct ReclaimEntry {
  uint32_t tenant_id = 0;
  uint32_t id = 0;
  uint64_t lease_end_ts = 0;
  bool operator==(const ReclaimEntry&) const = default;
};

struct Settings {
  uint32_t replication_factor = 3;
  uint64_t shard_split_bytes = 64ull << 20;
  uint64_t gc_ttl_seconds = 600;
  uint64_t node_suspect_timeout_ms = 5000;
  uint64_t node_dead_timeout_ms = 30000;
  uint32_t max_ops_per_round = 4;
  // The schema lease of collections created from now on (CollectionRecord).
  uint64_t schema_lease_ms = 10000;
  bool operator==(const Settings&) const = default;
};

// INVALID_ARGUMENT naming the first setting out of range.
Status ValidateSettings(const Settings& s);

inline constexpr uint32_t kDefaultTenantId = 1;
inline constexpr size_t kMaxIndexFields = 8;
inline constexpr size_t kMaxIndexesPerCollection = 64;
inline constexpr uint64_t kMaxGcTtlSeconds = 10ull * 365 * 24 * 3600;
inline constexpr uint32_t kDefaultCollectionId = 1;

struct ClusterState {
  std::map<uint64_t, Member> members;
  std::map<uint64_t, NodeRecord> nodes;
  std::map<uint64_t, ShardRecord> shards;
  std::map<uint32_t, TenantRecord> tenants;
  // (tenant id, name) -> collection.
  std::map<std::pair<uint32_t, std::string>, CollectionRecord> collections;
  // Dropped ids whose rows are still to be deleted, by id (ids are never reused).
  std::map<uint32_t, ReclaimEntry> reclaim;
  Settings settings;
  uint64_t tso_limit_ms = 0;  // no timestamp's physical part reaches it
  // Versions below it may be collected; snapshots below it are refused (see gc.h).
  uint64_t gc_safe_point = 0;
  uint64_t map_version = 0;      // bumped by every node, member or shard change
  uint64_t catalog_version = 0;  // bumped by every tenant or collection change
  uint64_t next_shard_id = 1;
  uint32_t next_tenant_id = kDefaultTenantId + 1;
  uint32_t next_collection_id = kDefaultCollectionId + 1;  // ids are never reused

  // The state of a brand-new cluster: the default tenant and its default collection.
  static ClusterState Initial();
  const TenantRecord* FindTenant(std::string_view name) const;
  bool operator==(const ClusterState&) const = default;
};

// Applies one command. On success `result` is the command's answer (JSON, may be
// "{}"); `touched` receives the keys of every record the command changed (for the
// state machine to persist). A refused command leaves the state unchanged.
Status Apply(ClusterState* state, std::string_view command, std::string* result,
             std::vector<std::string>* touched);

// Records: every part of the state has a key; RecordValue is its JSON, or nullopt if
// the record does not exist (was deleted). LoadRecord is the inverse.
std::vector<std::string> RecordKeys(const ClusterState& state);
std::optional<std::string> RecordValue(const ClusterState& state, const std::string& key);
Status LoadRecord(ClusterState* state, const std::string& key, std::string_view value);

// The whole state as one JSON document (snapshots), and back.
std::string EncodeState(const ClusterState& state);
Result<ClusterState> DecodeState(std::string_view data);

// An outcome carried through the Raft log: "{"ok":...}" or the Status, and back.
std::string EncodeOutcome(const Status& s, std::string_view result_json);
Status DecodeOutcome(std::string_view outcome, std::string* result_json);

std::string_view AdminStateName(AdminState a);

// Command builders.
namespace cmd {
std::string SetMember(const Member& m);
std::string RemoveMember(uint64_t id);
std::string RegisterNode(const NodeRecord& n);
std::string SetNodeAdmin(uint64_t id, AdminState admin);
// Creates shards; refused unless the map has none (the cluster's first shards).
std::string BootstrapShards(const std::vector<ShardRecord>& shards);
// Replaces a shard's descriptor when its epoch is newer (or the same epoch with a new
// leader); creates it when absent (a split's new shard). Stale: FAILED_PRECONDITION.
std::string UpdateShard(const ShardRecord& s);
// UpdateShard for each descriptor in one command; stale ones are skipped (the outcome
// is {"applied": n}).
std::string UpdateShards(const std::vector<ShardRecord>& shards);
// Reserves `count` (1..1000) new shard ids; the outcome is {"first": id}.
std::string AllocateShardIds(uint64_t count);
std::string TsoLimit(uint64_t limit_ms);
// Raises the GC safe point (never lowers it).
std::string GcSafePoint(uint64_t ts);
std::string CreateTenant(const std::string& name);
std::string CreateCollection(const std::string& tenant, const std::string& name,
                             const std::string& schema_json, const std::vector<IndexDef>& indexes,
                             uint64_t created_ms);
// Drops the collection; its id and its indexes' ids join `reclaim`.
std::string DropCollection(const std::string& tenant, const std::string& name);
// Adds `index` (name, fields, unique) to a collection as delete_only, under a new id. The
// same definition again answers the index as it is (a build to resume); another
// definition under a taken name is ALREADY_EXISTS. The outcome is the collection.
std::string AddIndex(const std::string& tenant, const std::string& collection,
                     const IndexDef& index);
// Changes the index named `index` whose id is `id` (NOT_FOUND otherwise): its state
// (delete_only -> building -> public | failed, any -> dropping), and with it
// `usable_from_ts` (-> public) or `error` (-> failed); or, staying building, its
// `build_resume` (never backwards). The outcome is the collection.
std::string UpdateIndex(const std::string& tenant, const std::string& collection,
                        const IndexDef& index);
// Removes a dropping or failed index named `index` with id `id`; its id joins `reclaim`.
std::string RemoveIndex(const std::string& tenant, const std::string& collection,
                        const std::string& index, uint32_t id);
// Every shard has deleted the rows of dropped id `id`: its reclaim entry goes (none:
// no change).
std::string ReclaimDone(uint32_t id);
// `patch_json`: an object of setting name -> new value; unknown names are refused.
std::string UpdateSettings(const std::string& patch_json);
}  // namespace cmd

}  // namespace gojodb::controller
