#include "core/controller/state.h"

#include <nlohmann/json.hpp>

#include "core/document/document.h"
#include "core/mvcc/key_codec.h"
#include "internal/encoding.h"
#include "internal/names.h"

namespace gojodb::controller {

using json = nlohmann::json;

const char* IndexStateName(IndexState s) {
  switch (s) {
    case IndexState::kDeleteOnly:
      return "delete_only";
    case IndexState::kBuilding:
      return "building";
    case IndexState::kPublic:
      return "public";
    case IndexState::kFailed:
      return "failed";
    case IndexState::kDropping:
      return "dropping";
  }
  return "unknown";
}

std::optional<IndexState> ParseIndexState(std::string_view s) {
  for (auto st : {IndexState::kDeleteOnly, IndexState::kBuilding, IndexState::kPublic,
                  IndexState::kFailed, IndexState::kDropping}) {
    if (s == IndexStateName(st)) return st;
  }
  return std::nullopt;
}

namespace {

constexpr std::string_view kGlobalsKey = "g";

// Strict readers: a negative or fractional number is malformed, not wrapped around.
uint64_t U64(const json& j, const char* key) {
  const json& v = j.at(key);
  if (!v.is_number_unsigned()) {
    throw json::type_error::create(302, std::string(key) + " must be a non-negative integer",
                                   nullptr);
  }
  return v.get<uint64_t>();
}
// The same for a field that may be absent.
uint64_t U64Or(const json& j, const char* key, uint64_t absent) {
  return j.contains(key) ? U64(j, key) : absent;
}
uint32_t U32(const json& j, const char* key) {
  const uint64_t v = U64(j, key);
  if (v > UINT32_MAX) {
    throw json::type_error::create(302, std::string(key) + " is out of range", nullptr);
  }
  return static_cast<uint32_t>(v);
}

// --- JSON of each record -------------------------------------------------------------

json ToJson(const Member& m) {
  return {{"id", m.id}, {"grpc_addr", m.grpc_addr}, {"http_addr", m.http_addr}};
}
Member MemberFromJson(const json& j) {
  return {U64(j, "id"), j.at("grpc_addr").get<std::string>(), j.value("http_addr", std::string())};
}

std::optional<AdminState> AdminFromName(std::string_view s) {
  if (s == "active") return AdminState::kActive;
  if (s == "decommissioning") return AdminState::kDecommissioning;
  if (s == "removed") return AdminState::kRemoved;
  return std::nullopt;
}

json ToJson(const NodeRecord& n) {
  return {{"id", n.id},
          {"grpc_addr", n.grpc_addr},
          {"http_addr", n.http_addr},
          {"capacity_bytes", n.capacity_bytes},
          {"labels", n.labels},
          {"admin", AdminStateName(n.admin)}};
}
NodeRecord NodeFromJson(const json& j) {
  NodeRecord n;
  n.id = U64(j, "id");
  n.grpc_addr = j.at("grpc_addr").get<std::string>();
  n.http_addr = j.value("http_addr", std::string());
  n.capacity_bytes = U64Or(j, "capacity_bytes", 0);
  if (j.contains("labels")) n.labels = j.at("labels").get<std::map<std::string, std::string>>();
  auto admin = AdminFromName(j.value("admin", std::string("active")));
  if (!admin) throw json::other_error::create(501, "unknown admin state", nullptr);
  n.admin = *admin;
  return n;
}

json ToJson(const ShardRecord& s) {
  json replicas = json::array();
  for (const auto& r : s.replicas) replicas.push_back({{"node", r.node}, {"learner", r.learner}});
  return {{"id", s.id},
          {"start_key_b64", Base64Encode(s.start_key)},
          {"end_key_b64", Base64Encode(s.end_key)},
          {"conf_ver", s.epoch.conf_ver},
          {"version", s.epoch.version},
          {"replicas", replicas},
          {"leader", s.leader}};
}
ShardRecord ShardFromJson(const json& j) {
  ShardRecord s;
  s.id = U64(j, "id");
  auto start = Base64Decode(j.value("start_key_b64", std::string()));
  auto end = Base64Decode(j.value("end_key_b64", std::string()));
  if (!start.ok() || !end.ok()) throw json::other_error::create(501, "bad shard key", nullptr);
  s.start_key = *start;
  s.end_key = *end;
  s.epoch.conf_ver = U64Or(j, "conf_ver", 1);
  s.epoch.version = U64Or(j, "version", 1);
  for (const auto& r : j.at("replicas")) {
    s.replicas.push_back({U64(r, "node"), r.value("learner", false)});
  }
  s.leader = U64Or(j, "leader", 0);
  return s;
}

json ToJson(const TenantRecord& t) { return {{"id", t.id}, {"name", t.name}}; }
TenantRecord TenantFromJson(const json& j) {
  return {U32(j, "id"), j.at("name").get<std::string>()};
}

json ToJson(const IndexDef& d) {
  json j = {{"name", d.name}, {"fields", d.fields}, {"unique", d.unique}, {"id", d.id}};
  if (d.state != IndexState::kPublic) j["state"] = IndexStateName(d.state);
  if (d.usable_from_ts) j["usable_from_ts"] = d.usable_from_ts;
  if (!d.build_resume.empty()) j["build_resume"] = Base64Encode(d.build_resume);
  if (!d.error.empty()) j["error"] = d.error;
  return j;
}
IndexDef IndexFromJson(const json& j) {
  IndexDef d{j.at("name").get<std::string>(), j.at("fields").get<std::vector<std::string>>(),
             j.value("unique", false), static_cast<uint32_t>(U64Or(j, "id", 0))};
  // Records written before index builds have no state: their indexes are public.
  if (j.contains("state")) {
    auto state = ParseIndexState(j.at("state").get<std::string>());
    if (!state) throw json::type_error::create(302, "unknown index state", nullptr);
    d.state = *state;
  }
  d.usable_from_ts = U64Or(j, "usable_from_ts", 0);
  if (j.contains("build_resume")) {
    auto raw = Base64Decode(j.at("build_resume").get<std::string>());
    if (!raw.ok()) throw json::type_error::create(302, "build_resume is not base64", nullptr);
    d.build_resume = std::move(*raw);
  }
  d.error = j.value("error", std::string());
  return d;
}

json ToJson(const CollectionRecord& c) {
  json idx = json::array();
  for (const auto& d : c.indexes) idx.push_back(ToJson(d));
  return {{"tenant_id", c.tenant_id},
          {"id", c.id},
          {"name", c.name},
          {"schema_json", c.schema_json},
          {"indexes", idx},
          {"created_ms", c.created_ms},
          {"schema_lease_ms", c.schema_lease_ms},
          {"schema_version", c.schema_version}};
}
CollectionRecord CollectionFromJson(const json& j) {
  CollectionRecord c;
  c.tenant_id = U32(j, "tenant_id");
  c.id = U32(j, "id");
  c.name = j.at("name").get<std::string>();
  c.schema_json = j.value("schema_json", std::string());
  for (const auto& d : j.value("indexes", json::array())) c.indexes.push_back(IndexFromJson(d));
  c.created_ms = U64Or(j, "created_ms", 0);
  c.schema_lease_ms = U64Or(j, "schema_lease_ms", CollectionRecord{}.schema_lease_ms);
  c.schema_version = U64Or(j, "schema_version", 1);
  return c;
}

json ToJson(const ReclaimEntry& r) {
  return {{"tenant_id", r.tenant_id}, {"id", r.id}, {"lease_end_ts", r.lease_end_ts}};
}
ReclaimEntry ReclaimFromJson(const json& j) {
  return {U32(j, "tenant_id"), U32(j, "id"), U64(j, "lease_end_ts")};
}

json ToJson(const Settings& s) {
  return {{"replication_factor", s.replication_factor},
          {"shard_split_bytes", s.shard_split_bytes},
          {"gc_ttl_seconds", s.gc_ttl_seconds},
          {"node_suspect_timeout_ms", s.node_suspect_timeout_ms},
          {"node_dead_timeout_ms", s.node_dead_timeout_ms},
          {"max_ops_per_round", s.max_ops_per_round},
          {"schema_lease_ms", s.schema_lease_ms}};
}

// Applies the fields of `patch` to `s`; unknown names and wrong types are refused.
Status PatchSettings(Settings* s, const json& patch) {
  if (!patch.is_object()) return Status::InvalidArgument("settings must be a JSON object");
  for (const auto& [name, v] : patch.items()) {
    if (!v.is_number_unsigned()) {
      return Status::InvalidArgument("setting '" + name + "' must be a non-negative integer");
    }
    const uint64_t n = v.get<uint64_t>();
    if (name == "replication_factor" || name == "max_ops_per_round") {
      if (n > UINT32_MAX) return Status::InvalidArgument("setting '" + name + "' is too large");
      (name == "replication_factor" ? s->replication_factor : s->max_ops_per_round) =
          static_cast<uint32_t>(n);
    } else if (name == "shard_split_bytes") {
      s->shard_split_bytes = n;
    } else if (name == "gc_ttl_seconds") {
      s->gc_ttl_seconds = n;
    } else if (name == "node_suspect_timeout_ms") {
      s->node_suspect_timeout_ms = n;
    } else if (name == "node_dead_timeout_ms") {
      s->node_dead_timeout_ms = n;
    } else if (name == "schema_lease_ms") {
      s->schema_lease_ms = n;
    } else {
      return Status::InvalidArgument("unknown setting '" + name + "'");
    }
  }
  return ValidateSettings(*s);
}

json GlobalsJson(const ClusterState& st) {
  return {{"settings", ToJson(st.settings)},       {"tso_limit_ms", st.tso_limit_ms},
          {"gc_safe_point", st.gc_safe_point},     {"map_version", st.map_version},
          {"catalog_version", st.catalog_version}, {"next_shard_id", st.next_shard_id},
          {"next_tenant_id", st.next_tenant_id},   {"next_collection_id", st.next_collection_id}};
}

Status LoadGlobals(ClusterState* st, const json& j) {
  Settings s;
  RETURN_IF_ERROR(PatchSettings(&s, j.at("settings")));
  st->settings = s;
  st->tso_limit_ms = U64(j, "tso_limit_ms");
  st->gc_safe_point = U64Or(j, "gc_safe_point", 0);
  st->map_version = U64(j, "map_version");
  st->catalog_version = U64(j, "catalog_version");
  st->next_shard_id = U64(j, "next_shard_id");
  st->next_tenant_id = U32(j, "next_tenant_id");
  st->next_collection_id = U32(j, "next_collection_id");
  return Status::OK();
}

std::string MemberKey(uint64_t id) { return "m/" + std::to_string(id); }
std::string NodeKey(uint64_t id) { return "n/" + std::to_string(id); }
std::string ShardKey(uint64_t id) { return "s/" + std::to_string(id); }
std::string TenantKey(uint32_t id) { return "t/" + std::to_string(id); }
std::string ReclaimKey(uint32_t id) { return "d/" + std::to_string(id); }
std::string CollectionKey(uint32_t tenant, const std::string& name) {
  return "c/" + std::to_string(tenant) + "/" + name;
}

// Parses the decimal id after a key's "x/" prefix.
std::optional<uint64_t> KeyId(std::string_view key) {
  if (key.size() < 3) return std::nullopt;
  uint64_t v = 0;
  for (char c : key.substr(2)) {
    if (c < '0' || c > '9' || v > UINT64_MAX / 10) return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

// --- Commands ------------------------------------------------------------------------

bool SameEndpoint(const NodeRecord& a, const NodeRecord& b) { return a.grpc_addr == b.grpc_addr; }

Status ValidateShard(const ClusterState& st, const ShardRecord& s) {
  if (s.id == 0) return Status::InvalidArgument("shard id must be positive");
  if (!s.end_key.empty() && s.end_key <= s.start_key) {
    return Status::InvalidArgument("shard " + std::to_string(s.id) + " has an empty key range");
  }
  if (s.replicas.empty()) {
    return Status::InvalidArgument("shard " + std::to_string(s.id) + " has no replicas");
  }
  std::vector<uint64_t> seen;
  for (const auto& r : s.replicas) {
    if (!st.nodes.count(r.node)) {
      return Status::NotFound("shard " + std::to_string(s.id) + " names unknown node " +
                              std::to_string(r.node));
    }
    if (std::find(seen.begin(), seen.end(), r.node) != seen.end()) {
      return Status::InvalidArgument("shard " + std::to_string(s.id) +
                                     " has two replicas on node " + std::to_string(r.node));
    }
    seen.push_back(r.node);
  }
  return Status::OK();
}

Status ApplySetMember(ClusterState* st, const json& c, std::vector<std::string>* touched) {
  Member m = MemberFromJson(c.at("member"));
  if (m.id == 0 || m.grpc_addr.empty()) {
    return Status::InvalidArgument("a controller member needs an id and a gRPC address");
  }
  for (const auto& [id, other] : st->members) {
    if (id != m.id && other.grpc_addr == m.grpc_addr) {
      return Status::AlreadyExists("address " + m.grpc_addr + " belongs to controller " +
                                   std::to_string(id));
    }
  }
  auto it = st->members.find(m.id);
  if (it != st->members.end() && it->second == m) return Status::OK();
  st->members[m.id] = m;
  ++st->map_version;
  touched->push_back(MemberKey(m.id));
  return Status::OK();
}

Status ApplyRegisterNode(ClusterState* st, const json& c, std::string* result,
                         std::vector<std::string>* touched) {
  NodeRecord n = NodeFromJson(c.at("node"));
  n.admin = AdminState::kActive;
  if (n.id == 0) return Status::InvalidArgument("node id must be positive");
  if (n.grpc_addr.empty()) return Status::InvalidArgument("node needs a gRPC address");
  for (const auto& [id, other] : st->nodes) {
    if (id != n.id && other.admin != AdminState::kRemoved && SameEndpoint(other, n)) {
      return Status::AlreadyExists("address " + n.grpc_addr + " belongs to storage node " +
                                   std::to_string(id));
    }
  }
  auto it = st->nodes.find(n.id);
  if (it != st->nodes.end()) {
    if (it->second.admin == AdminState::kRemoved) {
      return Status::FailedPrecondition("storage node " + std::to_string(n.id) +
                                        " was removed; a new node needs a new id");
    }
    if (!SameEndpoint(it->second, n)) {
      return Status::AlreadyExists("storage node " + std::to_string(n.id) + " is registered at " +
                                   it->second.grpc_addr);
    }
    n.admin = it->second.admin;  // a restart keeps the operator's intent
    if (it->second == n) {
      *result = json{{"id", n.id}, {"new", false}}.dump();
      return Status::OK();
    }
  }
  const bool fresh = it == st->nodes.end();
  st->nodes[n.id] = n;
  ++st->map_version;
  touched->push_back(NodeKey(n.id));
  *result = json{{"id", n.id}, {"new", fresh}}.dump();
  return Status::OK();
}

Status ApplySetNodeAdmin(ClusterState* st, const json& c, std::vector<std::string>* touched) {
  const uint64_t id = U64(c, "id");
  auto admin = AdminFromName(c.at("admin").get<std::string>());
  if (!admin) return Status::InvalidArgument("unknown node state");
  auto it = st->nodes.find(id);
  if (it == st->nodes.end()) {
    return Status::NotFound("storage node " + std::to_string(id) + " is not registered");
  }
  AdminState& cur = it->second.admin;
  if (cur == *admin) return Status::OK();
  if (cur == AdminState::kRemoved) {
    return Status::FailedPrecondition("storage node " + std::to_string(id) + " was removed");
  }
  if (cur == AdminState::kActive && *admin == AdminState::kRemoved) {
    return Status::FailedPrecondition("storage node " + std::to_string(id) +
                                      " must be decommissioned (drained) before removal");
  }
  cur = *admin;
  ++st->map_version;
  touched->push_back(NodeKey(id));
  return Status::OK();
}

Status ApplyBootstrapShards(ClusterState* st, const json& c, std::vector<std::string>* touched) {
  if (!st->shards.empty()) return Status::FailedPrecondition("the shard map is bootstrapped");
  std::vector<ShardRecord> shards;
  for (const auto& j : c.at("shards")) shards.push_back(ShardFromJson(j));
  if (shards.empty()) return Status::InvalidArgument("no shards to bootstrap");
  for (const auto& s : shards) RETURN_IF_ERROR(ValidateShard(*st, s));
  for (auto& s : shards) {
    st->next_shard_id = std::max(st->next_shard_id, s.id + 1);
    touched->push_back(ShardKey(s.id));
    st->shards[s.id] = std::move(s);
  }
  ++st->map_version;
  return Status::OK();
}

Status ApplyUpdateShard(ClusterState* st, const json& c, std::vector<std::string>* touched) {
  ShardRecord s = ShardFromJson(c.at("shard"));
  RETURN_IF_ERROR(ValidateShard(*st, s));
  auto it = st->shards.find(s.id);
  if (it != st->shards.end()) {
    const Epoch& old = it->second.epoch;
    if (s.epoch.conf_ver < old.conf_ver || s.epoch.version < old.version) {
      return Status::FailedPrecondition("stale descriptor of shard " + std::to_string(s.id));
    }
    if (s.epoch == old) {
      if (s.replicas != it->second.replicas || s.start_key != it->second.start_key ||
          s.end_key != it->second.end_key) {
        return Status::FailedPrecondition("shard " + std::to_string(s.id) +
                                          " changed without a new epoch");
      }
      if (s.leader == it->second.leader) return Status::OK();
    }
  }
  st->next_shard_id = std::max(st->next_shard_id, s.id + 1);
  touched->push_back(ShardKey(s.id));
  st->shards[s.id] = std::move(s);
  ++st->map_version;
  return Status::OK();
}

Status ApplyCreateTenant(ClusterState* st, const json& c, std::string* result,
                         std::vector<std::string>* touched) {
  const std::string name = c.at("name").get<std::string>();
  RETURN_IF_ERROR(ValidateName("tenant", name));
  if (st->FindTenant(name)) return Status::AlreadyExists("tenant '" + name + "' already exists");
  TenantRecord t{st->next_tenant_id++, name};
  st->tenants[t.id] = t;
  ++st->catalog_version;
  touched->push_back(TenantKey(t.id));
  *result = ToJson(t).dump();
  return Status::OK();
}

Status ValidateIndexDef(const IndexDef& d) {
  if (d.name.empty() || d.fields.empty()) {
    return Status::InvalidArgument("an index needs a name and at least one field");
  }
  if (d.fields.size() > kMaxIndexFields) {
    return Status::InvalidArgument("index '" + d.name + "' has more than " +
                                   std::to_string(kMaxIndexFields) + " fields");
  }
  for (const auto& f : d.fields) {
    auto path = document::ParsePath(f);
    if (!path.ok()) return path.status().WithContext("index '" + d.name + "'");
  }
  return Status::OK();
}

// The collection a command names, or NOT_FOUND.
Result<CollectionRecord*> CommandCollection(ClusterState* st, const json& c) {
  const std::string tenant = c.at("tenant").get<std::string>();
  const std::string name = c.at("collection").get<std::string>();
  const TenantRecord* t = st->FindTenant(tenant);
  if (!t) return Status::NotFound("tenant '" + tenant + "' does not exist");
  auto it = st->collections.find({t->id, name});
  if (it == st->collections.end()) {
    return Status::NotFound("collection '" + name + "' does not exist");
  }
  return &it->second;
}

void IndexChanged(ClusterState* st, CollectionRecord* col, std::string* result,
                  std::vector<std::string>* touched) {
  ++col->schema_version;
  ++st->catalog_version;
  touched->push_back(CollectionKey(col->tenant_id, col->name));
  *result = ToJson(*col).dump();
}

Status ApplyAddIndex(ClusterState* st, const json& c, std::string* result,
                     std::vector<std::string>* touched) {
  ASSIGN_OR_RETURN(CollectionRecord * col, CommandCollection(st, c));
  IndexDef d = IndexFromJson(c.at("index"));
  RETURN_IF_ERROR(ValidateIndexDef(d));
  // (Only here: a name is part of the index's URL. Collections created earlier keep
  // theirs, and replaying their commands must give the same state.)
  RETURN_IF_ERROR(ValidateName("index", d.name));
  for (const auto& have : col->indexes) {
    if (have.name != d.name) continue;
    if (have.fields == d.fields && have.unique == d.unique &&
        (have.state == IndexState::kDeleteOnly || have.state == IndexState::kBuilding ||
         have.state == IndexState::kPublic)) {
      *result = ToJson(*col).dump();  // the same index: answer it as it is
      return Status::OK();
    }
    const bool same = have.fields == d.fields && have.unique == d.unique;
    return Status::AlreadyExists("collection '" + col->name + "' has an index named '" + d.name +
                                 "' (" + IndexStateName(have.state) +
                                 (same ? "" : ", defined otherwise") +
                                 "); drop it first or choose another name");
  }
  if (col->indexes.size() >= kMaxIndexesPerCollection) {
    return Status::InvalidArgument("collection '" + col->name + "' has " +
                                   std::to_string(kMaxIndexesPerCollection) +
                                   " indexes already, the most it may have");
  }
  d.id = st->next_collection_id++;
  d.state = IndexState::kDeleteOnly;
  d.usable_from_ts = 0;
  d.build_resume.clear();
  d.error.clear();
  col->indexes.push_back(std::move(d));
  IndexChanged(st, col, result, touched);
  return Status::OK();
}

IndexDef* FindIndex(CollectionRecord* col, const std::string& name, uint32_t id) {
  for (auto& d : col->indexes) {
    if (d.name == name && d.id == id) return &d;
  }
  return nullptr;
}

Status ApplyUpdateIndex(ClusterState* st, const json& c, std::string* result,
                        std::vector<std::string>* touched) {
  ASSIGN_OR_RETURN(CollectionRecord * col, CommandCollection(st, c));
  const IndexDef want = IndexFromJson(c.at("index"));
  IndexDef* d = FindIndex(col, want.name, want.id);
  if (!d) {
    return Status::NotFound("collection '" + col->name + "' has no index '" + want.name +
                            "' with id " + std::to_string(want.id));
  }
  if (want.state == d->state) {
    if (d->state != IndexState::kBuilding) {  // already there: a retry
      *result = ToJson(*col).dump();
      return Status::OK();
    }
    // Progress of a build: a slower builder of the same index never moves it back.
    if (want.build_resume > d->build_resume) {
      d->build_resume = want.build_resume;
      ++st->catalog_version;
      touched->push_back(CollectionKey(col->tenant_id, col->name));
    }
    *result = ToJson(*col).dump();
    return Status::OK();
  }
  const bool allowed =
      (d->state == IndexState::kDeleteOnly && want.state == IndexState::kBuilding) ||
      (d->state == IndexState::kBuilding &&
       (want.state == IndexState::kPublic || want.state == IndexState::kFailed)) ||
      want.state == IndexState::kDropping;
  if (!allowed) {
    return Status::FailedPrecondition("index '" + d->name + "' is " + IndexStateName(d->state) +
                                      "; it cannot become " + IndexStateName(want.state));
  }
  d->state = want.state;
  if (want.state == IndexState::kPublic) d->usable_from_ts = want.usable_from_ts;
  if (want.state == IndexState::kFailed) d->error = want.error;
  if (want.state != IndexState::kBuilding) d->build_resume.clear();
  IndexChanged(st, col, result, touched);
  return Status::OK();
}

// Adds a dropped id's rows to the reclaim list. Every router that could still write or
// read them read its record before this command, at a timestamp below the TSO's limit
// (no timestamp issued so far reaches it): it commits and plans below that timestamp
// plus the collection's schema lease.
void Reclaim(ClusterState* st, uint32_t tenant, uint32_t id, uint64_t lease_ms,
             std::vector<std::string>* touched) {
  st->reclaim[id] = {tenant, id, mvcc::ComposeTimestamp(st->tso_limit_ms + lease_ms, 0)};
  touched->push_back(ReclaimKey(id));
}

Status ApplyRemoveIndex(ClusterState* st, const json& c, std::string* result,
                        std::vector<std::string>* touched) {
  ASSIGN_OR_RETURN(CollectionRecord * col, CommandCollection(st, c));
  const std::string name = c.at("index").get<std::string>();
  const uint32_t id = U32(c, "id");
  IndexDef* d = FindIndex(col, name, id);
  if (!d) {
    *result = ToJson(*col).dump();  // gone already: a retry
    return Status::OK();
  }
  if (d->state != IndexState::kDropping && d->state != IndexState::kFailed) {
    return Status::FailedPrecondition("index '" + name + "' is " + IndexStateName(d->state) +
                                      ", not dropping");
  }
  Reclaim(st, col->tenant_id, d->id, col->schema_lease_ms, touched);
  col->indexes.erase(col->indexes.begin() + (d - col->indexes.data()));
  IndexChanged(st, col, result, touched);
  return Status::OK();
}

Status ApplyCreateCollection(ClusterState* st, const json& c, std::string* result,
                             std::vector<std::string>* touched) {
  const std::string tenant = c.at("tenant").get<std::string>();
  const TenantRecord* t = st->FindTenant(tenant);
  if (!t) return Status::NotFound("tenant '" + tenant + "' does not exist");
  CollectionRecord col;
  col.tenant_id = t->id;
  col.name = c.at("name").get<std::string>();
  RETURN_IF_ERROR(ValidateName("collection", col.name));
  col.schema_json = c.value("schema_json", std::string());
  if (!col.schema_json.empty()) RETURN_IF_ERROR(document::Schema::Parse(col.schema_json).status());
  for (const auto& d : c.value("indexes", json::array())) col.indexes.push_back(IndexFromJson(d));
  for (size_t i = 0; i < col.indexes.size(); ++i) {
    auto& d = col.indexes[i];
    RETURN_IF_ERROR(ValidateIndexDef(d));
    // Declared with the collection: complete from the start.
    d.state = IndexState::kPublic;
    d.usable_from_ts = 0;
    d.build_resume.clear();
    d.error.clear();
    for (size_t k = 0; k < i; ++k) {
      if (col.indexes[k].name == d.name) {
        return Status::InvalidArgument("two indexes are named '" + d.name + "'");
      }
    }
  }
  col.created_ms = U64Or(c, "created_ms", 0);
  col.schema_lease_ms = st->settings.schema_lease_ms;
  auto key = std::make_pair(t->id, col.name);
  if (st->collections.count(key)) {
    return Status::AlreadyExists("collection '" + col.name + "' already exists");
  }
  col.id = st->next_collection_id++;
  for (auto& d : col.indexes) d.id = st->next_collection_id++;
  touched->push_back(CollectionKey(t->id, col.name));
  *result = ToJson(col).dump();
  st->collections[key] = std::move(col);
  ++st->catalog_version;
  return Status::OK();
}

Status ApplyDropCollection(ClusterState* st, const json& c, std::vector<std::string>* touched) {
  const std::string tenant = c.at("tenant").get<std::string>();
  const std::string name = c.at("name").get<std::string>();
  const TenantRecord* t = st->FindTenant(tenant);
  if (!t) return Status::NotFound("tenant '" + tenant + "' does not exist");
  auto it = st->collections.find({t->id, name});
  if (it == st->collections.end()) {
    return Status::NotFound("collection '" + name + "' does not exist");
  }
  const CollectionRecord& col = it->second;
  Reclaim(st, t->id, col.id, col.schema_lease_ms, touched);
  for (const auto& d : col.indexes) Reclaim(st, t->id, d.id, col.schema_lease_ms, touched);
  st->collections.erase(it);
  ++st->catalog_version;
  touched->push_back(CollectionKey(t->id, name));
  return Status::OK();
}

Status ApplyJson(ClusterState* st, const json& c, std::string* result,
                 std::vector<std::string>* touched) {
  const std::string op = c.at("op").get<std::string>();
  if (op == "set_member") return ApplySetMember(st, c, touched);
  if (op == "remove_member") {
    const uint64_t id = U64(c, "id");
    if (!st->members.erase(id)) {
      return Status::NotFound("controller " + std::to_string(id) + " is not a member");
    }
    ++st->map_version;
    touched->push_back(MemberKey(id));
    return Status::OK();
  }
  if (op == "register_node") return ApplyRegisterNode(st, c, result, touched);
  if (op == "set_node_admin") return ApplySetNodeAdmin(st, c, touched);
  if (op == "bootstrap_shards") return ApplyBootstrapShards(st, c, touched);
  if (op == "update_shard") return ApplyUpdateShard(st, c, touched);
  if (op == "update_shards") {
    // Each report on its own: a stale or malformed one is skipped, the rest apply.
    if (!c.contains("shards") || !c["shards"].is_array()) {
      return Status::InvalidArgument("update_shards needs a list of shards");
    }
    int applied = 0;
    for (const auto& one : c["shards"]) {
      // ApplyUpdateShard changes nothing when it refuses.
      std::vector<std::string> one_touched;
      json single = {{"shard", one}};
      Status s = ApplyUpdateShard(st, single, &one_touched);
      if (!s.ok()) continue;
      applied++;
      touched->insert(touched->end(), one_touched.begin(), one_touched.end());
    }
    *result = json{{"applied", applied}}.dump();
    return Status::OK();
  }
  if (op == "allocate_shard_ids") {
    const uint64_t count = U64(c, "count");
    if (count == 0 || count > 1000) {
      return Status::InvalidArgument("shard ids are allocated 1..1000 at a time");
    }
    const uint64_t first = st->next_shard_id;
    st->next_shard_id += count;
    *result = json{{"first", first}}.dump();
    return Status::OK();  // touches only the globals
  }
  if (op == "tso_limit") {
    st->tso_limit_ms = std::max(st->tso_limit_ms, U64(c, "limit_ms"));
    *result = json{{"limit_ms", st->tso_limit_ms}}.dump();
    return Status::OK();  // touches only the globals
  }
  if (op == "gc_safe_point") {
    // Never back: storage nodes may already have collected the versions below it.
    st->gc_safe_point = std::max(st->gc_safe_point, U64(c, "ts"));
    *result = json{{"gc_safe_point", st->gc_safe_point}}.dump();
    return Status::OK();  // touches only the globals
  }
  if (op == "create_tenant") return ApplyCreateTenant(st, c, result, touched);
  if (op == "create_collection") return ApplyCreateCollection(st, c, result, touched);
  if (op == "drop_collection") return ApplyDropCollection(st, c, touched);
  if (op == "add_index") return ApplyAddIndex(st, c, result, touched);
  if (op == "update_index") return ApplyUpdateIndex(st, c, result, touched);
  if (op == "remove_index") return ApplyRemoveIndex(st, c, result, touched);
  if (op == "reclaim_done") {
    const uint32_t id = U32(c, "id");
    if (st->reclaim.erase(id)) touched->push_back(ReclaimKey(id));
    return Status::OK();
  }
  if (op == "update_settings") {
    Settings s = st->settings;
    RETURN_IF_ERROR(PatchSettings(&s, c.at("patch")));
    st->settings = s;
    *result = ToJson(s).dump();
    return Status::OK();
  }
  return Status::InvalidArgument("unknown controller command '" + op + "'");
}

}  // namespace

std::string_view AdminStateName(AdminState a) {
  switch (a) {
    case AdminState::kActive:
      return "active";
    case AdminState::kDecommissioning:
      return "decommissioning";
    case AdminState::kRemoved:
      return "removed";
  }
  return "unknown";
}

Status ValidateSettings(const Settings& s) {
  if (s.replication_factor < 1 || s.replication_factor > 7) {
    return Status::InvalidArgument("replication_factor must be between 1 and 7");
  }
  if (s.shard_split_bytes < 1024) {
    return Status::InvalidArgument("shard_split_bytes must be at least 1024");
  }
  if (s.gc_ttl_seconds < 1 || s.gc_ttl_seconds > kMaxGcTtlSeconds) {
    return Status::InvalidArgument("gc_ttl_seconds must be between 1 and " +
                                   std::to_string(kMaxGcTtlSeconds) + " (ten years)");
  }
  if (s.node_suspect_timeout_ms < 100) {
    return Status::InvalidArgument("node_suspect_timeout_ms must be at least 100");
  }
  if (s.node_dead_timeout_ms <= s.node_suspect_timeout_ms) {
    return Status::InvalidArgument(
        "node_dead_timeout_ms must be larger than node_suspect_timeout_ms");
  }
  if (s.max_ops_per_round < 1 || s.max_ops_per_round > 64) {
    return Status::InvalidArgument("max_ops_per_round must be between 1 and 64");
  }
  if (s.schema_lease_ms < 100 || s.schema_lease_ms > 600000) {
    return Status::InvalidArgument("schema_lease_ms must be between 100 and 600000");
  }
  return Status::OK();
}

ClusterState ClusterState::Initial() {
  ClusterState st;
  st.tenants[kDefaultTenantId] = {kDefaultTenantId, "default"};
  CollectionRecord c;
  c.tenant_id = kDefaultTenantId;
  c.id = kDefaultCollectionId;
  c.name = "default";
  st.collections[{kDefaultTenantId, "default"}] = c;
  return st;
}

const TenantRecord* ClusterState::FindTenant(std::string_view name) const {
  for (const auto& [id, t] : tenants) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

Status Apply(ClusterState* state, std::string_view command, std::string* result,
             std::vector<std::string>* touched) {
  json c = json::parse(command, nullptr, /*allow_exceptions=*/false);
  if (c.is_discarded() || !c.is_object()) {
    return Status::InvalidArgument("controller command is not a JSON object");
  }
  *result = "{}";
  // Work on a copy so that a refused command, or one that fails halfway, changes
  // nothing. The state is small (metadata only).
  ClusterState next = *state;
  std::vector<std::string> keys;
  Status s;
  try {
    s = ApplyJson(&next, c, result, &keys);
  } catch (const json::exception& e) {
    s = Status::InvalidArgument(std::string("malformed controller command: ") + e.what());
  }
  if (!s.ok()) return s;
  if (!(next == *state)) keys.emplace_back(kGlobalsKey);
  *state = std::move(next);
  touched->insert(touched->end(), keys.begin(), keys.end());
  return Status::OK();
}

std::vector<std::string> RecordKeys(const ClusterState& st) {
  std::vector<std::string> keys{std::string(kGlobalsKey)};
  for (const auto& [id, m] : st.members) keys.push_back(MemberKey(id));
  for (const auto& [id, n] : st.nodes) keys.push_back(NodeKey(id));
  for (const auto& [id, s] : st.shards) keys.push_back(ShardKey(id));
  for (const auto& [id, t] : st.tenants) keys.push_back(TenantKey(id));
  for (const auto& [k, c] : st.collections) keys.push_back(CollectionKey(k.first, k.second));
  for (const auto& [id, r] : st.reclaim) keys.push_back(ReclaimKey(id));
  return keys;
}

std::optional<std::string> RecordValue(const ClusterState& st, const std::string& key) {
  if (key == kGlobalsKey) return GlobalsJson(st).dump();
  if (key.size() < 3 || key[1] != '/') return std::nullopt;
  if (key[0] == 'c') {
    size_t slash = key.find('/', 2);
    if (slash == std::string::npos) return std::nullopt;
    auto tenant = KeyId(key.substr(0, slash));
    if (!tenant) return std::nullopt;
    auto it = st.collections.find({static_cast<uint32_t>(*tenant), key.substr(slash + 1)});
    if (it == st.collections.end()) return std::nullopt;
    return ToJson(it->second).dump();
  }
  auto id = KeyId(key);
  if (!id) return std::nullopt;
  switch (key[0]) {
    case 'm':
      if (auto it = st.members.find(*id); it != st.members.end()) return ToJson(it->second).dump();
      break;
    case 'n':
      if (auto it = st.nodes.find(*id); it != st.nodes.end()) return ToJson(it->second).dump();
      break;
    case 's':
      if (auto it = st.shards.find(*id); it != st.shards.end()) return ToJson(it->second).dump();
      break;
    case 't':
      if (auto it = st.tenants.find(static_cast<uint32_t>(*id)); it != st.tenants.end())
        return ToJson(it->second).dump();
      break;
    case 'd':
      if (auto it = st.reclaim.find(static_cast<uint32_t>(*id)); it != st.reclaim.end())
        return ToJson(it->second).dump();
      break;
  }
  return std::nullopt;
}

Status LoadRecord(ClusterState* st, const std::string& key, std::string_view value) {
  json j = json::parse(value, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::Corruption("controller record " + key + " is not JSON");
  try {
    if (key == kGlobalsKey) return LoadGlobals(st, j);
    switch (key.empty() ? '\0' : key[0]) {
      case 'm': {
        Member m = MemberFromJson(j);
        st->members[m.id] = m;
        return Status::OK();
      }
      case 'n': {
        NodeRecord n = NodeFromJson(j);
        st->nodes[n.id] = n;
        return Status::OK();
      }
      case 's': {
        ShardRecord s = ShardFromJson(j);
        st->shards[s.id] = s;
        return Status::OK();
      }
      case 't': {
        TenantRecord t = TenantFromJson(j);
        st->tenants[t.id] = t;
        return Status::OK();
      }
      case 'c': {
        CollectionRecord c = CollectionFromJson(j);
        st->collections[{c.tenant_id, c.name}] = c;
        return Status::OK();
      }
      case 'd': {
        ReclaimEntry r = ReclaimFromJson(j);
        st->reclaim[r.id] = r;
        return Status::OK();
      }
    }
  } catch (const json::exception& e) {
    return Status::Corruption("controller record " + key + ": " + e.what());
  }
  return Status::Corruption("unknown controller record " + key);
}

std::string EncodeState(const ClusterState& st) {
  json j = json::object();
  for (const auto& key : RecordKeys(st)) j[key] = json::parse(*RecordValue(st, key));
  return j.dump();
}

Result<ClusterState> DecodeState(std::string_view data) {
  json j = json::parse(data, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return Status::Corruption("controller snapshot is not a JSON object");
  }
  ClusterState st;
  for (const auto& [key, value] : j.items()) RETURN_IF_ERROR(LoadRecord(&st, key, value.dump()));
  return st;
}

std::string EncodeOutcome(const Status& s, std::string_view result_json) {
  if (s.ok()) return std::string("{\"ok\":") + std::string(result_json) + "}";
  return json{{"code", StatusCodeName(s.code())}, {"message", s.message()}}.dump();
}

Status DecodeOutcome(std::string_view outcome, std::string* result_json) {
  json j = json::parse(outcome, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return Status::Internal("undecodable controller command outcome");
  }
  if (j.contains("ok")) {
    if (result_json) *result_json = j["ok"].dump();
    return Status::OK();
  }
  auto code = StatusCodeFromName(j.value("code", std::string()));
  return Status(code.value_or(StatusCode::kInternal), j.value("message", std::string()));
}

namespace cmd {
std::string SetMember(const Member& m) {
  return json{{"op", "set_member"}, {"member", ToJson(m)}}.dump();
}
std::string RemoveMember(uint64_t id) { return json{{"op", "remove_member"}, {"id", id}}.dump(); }
std::string RegisterNode(const NodeRecord& n) {
  return json{{"op", "register_node"}, {"node", ToJson(n)}}.dump();
}
std::string SetNodeAdmin(uint64_t id, AdminState admin) {
  return json{{"op", "set_node_admin"}, {"id", id}, {"admin", AdminStateName(admin)}}.dump();
}
std::string BootstrapShards(const std::vector<ShardRecord>& shards) {
  json arr = json::array();
  for (const auto& s : shards) arr.push_back(ToJson(s));
  return json{{"op", "bootstrap_shards"}, {"shards", arr}}.dump();
}
std::string UpdateShard(const ShardRecord& s) {
  return json{{"op", "update_shard"}, {"shard", ToJson(s)}}.dump();
}
std::string UpdateShards(const std::vector<ShardRecord>& shards) {
  json list = json::array();
  for (const auto& s : shards) list.push_back(ToJson(s));
  return json{{"op", "update_shards"}, {"shards", list}}.dump();
}
std::string AllocateShardIds(uint64_t count) {
  return json{{"op", "allocate_shard_ids"}, {"count", count}}.dump();
}

std::string TsoLimit(uint64_t limit_ms) {
  return json{{"op", "tso_limit"}, {"limit_ms", limit_ms}}.dump();
}
std::string GcSafePoint(uint64_t ts) { return json{{"op", "gc_safe_point"}, {"ts", ts}}.dump(); }
std::string CreateTenant(const std::string& name) {
  return json{{"op", "create_tenant"}, {"name", name}}.dump();
}
std::string CreateCollection(const std::string& tenant, const std::string& name,
                             const std::string& schema_json, const std::vector<IndexDef>& indexes,
                             uint64_t created_ms) {
  json idx = json::array();
  for (const auto& d : indexes) idx.push_back(ToJson(d));
  return json{{"op", "create_collection"},  {"tenant", tenant}, {"name", name},
              {"schema_json", schema_json}, {"indexes", idx},   {"created_ms", created_ms}}
      .dump();
}
std::string ReclaimDone(uint32_t id) { return json{{"op", "reclaim_done"}, {"id", id}}.dump(); }

std::string DropCollection(const std::string& tenant, const std::string& name) {
  return json{{"op", "drop_collection"}, {"tenant", tenant}, {"name", name}}.dump();
}
std::string AddIndex(const std::string& tenant, const std::string& collection,
                     const IndexDef& index) {
  return json{
      {"op", "add_index"}, {"tenant", tenant}, {"collection", collection}, {"index", ToJson(index)}}
      .dump();
}
std::string UpdateIndex(const std::string& tenant, const std::string& collection,
                        const IndexDef& index) {
  return json{{"op", "update_index"},
              {"tenant", tenant},
              {"collection", collection},
              {"index", ToJson(index)}}
      .dump();
}
std::string RemoveIndex(const std::string& tenant, const std::string& collection,
                        const std::string& index, uint32_t id) {
  return json{{"op", "remove_index"},
              {"tenant", tenant},
              {"collection", collection},
              {"index", index},
              {"id", id}}
      .dump();
}
std::string UpdateSettings(const std::string& patch_json) {
  json patch = json::parse(patch_json, nullptr, /*allow_exceptions=*/false);
  // An unparsable patch stays a string, which Apply refuses as not an object.
  if (patch.is_discarded()) patch = patch_json;
  return json{{"op", "update_settings"}, {"patch", patch}}.dump();
}
}  // namespace cmd

}  // namespace gojodb::controller
