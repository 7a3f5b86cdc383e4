// Documents in the router: writes that keep secondary indexes exact (each one a
// transaction over the document's row and its index entries), and queries planned over
// those indexes. See docs/architecture/documents.md.
#include <algorithm>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "api/gateway/call_util.h"
#include "api/gateway/cluster_kv.h"
#include "core/mvcc/key_codec.h"
#include "core/query/aggregate.h"
#include "core/query/query.h"
#include "core/query/shard_query.h"
#include "internal/encoding.h"

namespace gojodb::gateway {
namespace {

using json = nlohmann::json;
constexpr uint32_t kTenant = controller::kDefaultTenantId;
constexpr size_t kMaxSortRows = 100000;
constexpr size_t kMaxShardMatches = 10000;  // a ShardKv.Query call's limit

std::string_view Reason(const Status& s) {
  for (const auto& [k, v] : s.details()) {
    if (k == "reason") return v;
  }
  return {};
}

// A hit's place in the query's order: the encoded sort values, then the key.
struct Position {
  std::vector<std::string> sort;
  std::string key;
};

class Order {
 public:
  explicit Order(std::vector<bool> descending) : desc_(std::move(descending)) {}
  // a before b?
  bool Before(const Position& a, const Position& b) const {
    for (size_t i = 0; i < desc_.size(); ++i) {
      if (a.sort[i] == b.sort[i]) continue;
      return desc_[i] ? a.sort[i] > b.sort[i] : a.sort[i] < b.sort[i];
    }
    return a.key < b.key;
  }

 private:
  std::vector<bool> desc_;
};

std::string EncodeCursor(uint64_t read_ts, const Position& p) {
  json sort = json::array();
  for (const auto& s : p.sort) sort.push_back(Base64Encode(s));
  return Base64Encode(json{{"ts", read_ts}, {"sort", sort}, {"key", Base64Encode(p.key)}}.dump());
}

Status BadCursor() {
  return Status::InvalidArgument(
      "cursor is not one this query issued (pass back the cursor "
      "of the previous page with the same filter and sort)");
}

Result<std::pair<uint64_t, Position>> DecodeCursor(const std::string& cursor, size_t sort_fields) {
  auto raw = Base64Decode(cursor);
  if (!raw.ok()) return BadCursor();
  json j = json::parse(*raw, nullptr, false);
  if (!j.is_object() || !j["ts"].is_number_unsigned() || !j["sort"].is_array() ||
      j["sort"].size() != sort_fields || !j["key"].is_string()) {
    return BadCursor();
  }
  Position p;
  for (const auto& s : j["sort"]) {
    if (!s.is_string()) return BadCursor();
    auto v = Base64Decode(s.get<std::string>());
    if (!v.ok()) return BadCursor();
    p.sort.push_back(std::move(*v));
  }
  auto key = Base64Decode(j["key"].get<std::string>());
  if (!key.ok()) return BadCursor();
  p.key = std::move(*key);
  return std::make_pair(j["ts"].get<uint64_t>(), std::move(p));
}

Status MissingDocument(const document::IndexSpec& index, const std::string& key) {
  return Status::Internal("index '" + index.name + "' names document '" + key.substr(0, 128) +
                          "', which does not exist");
}

}  // namespace

Result<DocRules> RulesOf(const kv::CollectionInfo& info) {
  DocRules r;
  if (!info.schema_json.empty()) {
    auto s = document::Schema::Parse(info.schema_json);
    if (!s.ok()) return s.status().WithContext("collection '" + info.name + "'");
    r.schema = std::move(*s);
  }
  for (const auto& i : info.indexes) {
    const bool is_public = i.state.empty() || i.state == kv::kIndexPublic;
    const bool delete_only = i.state == kv::kIndexDeleteOnly;
    // A failed build's index is kept by nobody (its uniqueness does not hold).
    if (!is_public && !delete_only && i.state != kv::kIndexBuilding &&
        i.state != kv::kIndexDropping) {
      continue;
    }
    document::IndexSpec spec{i.name, i.id, {}, i.unique};
    for (const auto& f : i.fields) {
      ASSIGN_OR_RETURN(auto path, document::ParsePath(f));
      spec.fields.push_back(std::move(path));
    }
    if (spec.id == 0) {
      return Status::FailedPrecondition("index '" + i.name + "' of collection '" + info.name +
                                        "' has no id (created by an older controller)");
    }
    if (delete_only) {
      r.delete_only.push_back(std::move(spec));
      continue;
    }
    r.usable_from.push_back(is_public ? i.usable_from_ts : UINT64_MAX);
    r.indexes.push_back(std::move(spec));
  }
  for (const auto* list : {&r.indexes, &r.delete_only}) {
    for (const auto& spec : *list) {
      for (const auto& f : spec.fields) r.index_fields.push_back(f.segments.front());
    }
  }
  std::sort(r.index_fields.begin(), r.index_fields.end());
  r.index_fields.erase(std::unique(r.index_fields.begin(), r.index_fields.end()),
                       r.index_fields.end());
  return r;
}

Result<json> DocRules::ParseForWrite(std::string_view bytes) const {
  if (schema) return document::ParseDocument(bytes);
  return document::ParseDocumentFields(bytes, index_fields);
}

std::vector<document::IndexSpec> DocRules::QueryableAt(uint64_t read_ts) const {
  std::vector<document::IndexSpec> out;
  for (size_t i = 0; i < indexes.size(); ++i) {
    if (usable_from[i] <= read_ts) out.push_back(indexes[i]);
  }
  return out;
}

Result<bool> ClusterKv::WritesDocuments(const std::vector<kv::BatchOp>& ops,
                                        Clock::time_point deadline) {
  for (size_t i = 0; i < ops.size(); ++i) {
    auto info = Collection(ops[i].collection, deadline);
    if (!info.ok()) return info.status().WithContext("ops[" + std::to_string(i) + "]");
    if (HasRules(*info)) return true;
  }
  return false;
}

Result<std::vector<txn::TxnMutation>> ClusterKv::PlanOps(const std::vector<kv::BatchOp>& ops,
                                                         uint64_t start_ts,
                                                         Clock::time_point deadline,
                                                         uint64_t* commit_below) {
  struct Planned {
    const kv::BatchOp* op = nullptr;
    std::string where;
    uint32_t collection = 0;
    const DocRules* rules = nullptr;  // null: a plain collection
    std::optional<json> doc;          // a document's put
  };
  std::map<std::string, std::pair<kv::CollectionInfo, DocRules>> collections;
  std::vector<Planned> planned;
  std::set<std::string> rows;
  for (size_t i = 0; i < ops.size(); ++i) {
    const auto& op = ops[i];
    Planned p{&op, "ops[" + std::to_string(i) + "]"};
    auto it = collections.find(op.collection);
    if (it == collections.end()) {
      auto info = Collection(op.collection, deadline);
      if (!info.ok()) return info.status().WithContext(p.where);
      *commit_below = LeastLease(*commit_below, info->lease_end_ts);
      DocRules rules;
      if (HasRules(*info)) {
        auto r = RulesOf(*info);
        if (!r.ok()) return r.status().WithContext(p.where);
        rules = std::move(*r);
      }
      it = collections.emplace(op.collection, std::make_pair(std::move(*info), std::move(rules)))
               .first;
    }
    const auto& [info, rules] = it->second;
    p.collection = info.id;
    if (!rows.insert(mvcc::EncodeRowKey(kTenant, info.id, op.key)).second) {
      return Status::InvalidArgument(p.where + ": the key is written twice");
    }
    if (HasRules(info)) {
      p.rules = &rules;
      if (op.kind == kv::BatchOp::Kind::kPut) {
        auto doc = document::ParseDocument(op.value);
        if (!doc.ok()) return doc.status().WithContext(p.where);
        Status checked = CheckDocument(rules, op.key, *doc, options_.limits.max_key_bytes);
        if (!checked.ok()) return checked.WithContext(p.where);
        p.doc = std::move(*doc);
      }
    }
    planned.push_back(std::move(p));
  }
  // The rows as of start_ts that the plan depends on: every document (its old entries),
  // and every row with a condition (checked here, so that a failed one is an answer,
  // not a conflict to retry; the commit checks it again).
  std::map<uint32_t, std::vector<size_t>> reads;  // collection -> ops
  for (size_t i = 0; i < planned.size(); ++i) {
    if (planned[i].rules || planned[i].op->if_version) reads[planned[i].collection].push_back(i);
  }
  std::vector<kv::GetResult> current(planned.size());
  for (const auto& [id, which] : reads) {
    std::vector<std::string> keys;
    for (size_t i : which) keys.push_back(planned[i].op->key);
    ASSIGN_OR_RETURN(auto got, MultiGetById(id, keys, start_ts, deadline));
    for (size_t j = 0; j < which.size(); ++j) current[which[j]] = std::move(got[j]);
  }
  std::vector<txn::TxnMutation> mutations;
  std::vector<std::pair<size_t, UniqueClaim>> claims;  // (op, claim)
  for (size_t i = 0; i < planned.size(); ++i) {
    const Planned& p = planned[i];
    const kv::BatchOp& op = *p.op;
    const uint64_t version = current[i].found ? current[i].version : 0;
    if (op.if_version && *op.if_version != version) {
      return Status::FailedPrecondition(p.where + ": key '" + op.key.substr(0, 128) +
                                        "' is at version " + std::to_string(version) + ", not " +
                                        std::to_string(*op.if_version))
          .WithDetail("current_version", std::to_string(version))
          .WithDetail("op", std::to_string(i));
    }
    const bool del = op.kind == kv::BatchOp::Kind::kDelete;
    mutations.push_back({del ? txn::LockKind::kDelete : txn::LockKind::kPut,
                         mvcc::EncodeRowKey(kTenant, p.collection, op.key),
                         del ? std::string() : op.value, op.if_version});
    if (!p.rules) continue;
    std::optional<json> old;
    if (current[i].found) {
      if (auto d = document::ParseDocument(current[i].value); d.ok()) old = std::move(*d);
    }
    std::vector<UniqueClaim> mine;
    AppendEntryMutations(*p.rules, op.key, old ? &*old : nullptr, p.doc ? &*p.doc : nullptr,
                         &mutations, &mine);
    for (auto& c : mine) claims.emplace_back(i, c);
  }
  // Unique values are checked against the collections as of start_ts: a value another
  // document holds is refused, even if an op of this batch lets it go; of two ops that
  // claim one value, the second is refused.
  std::set<std::string> claimed;
  for (const auto& [i, c] : claims) {
    const std::string& row = mutations[c.mutation].row_key;
    if (!claimed.insert(row).second) {
      return UniqueViolation(*c.index, "an earlier op of the batch").WithContext(planned[i].where);
    }
    ASSIGN_OR_RETURN(
        auto holder,
        GetById(c.index->id, {"", c.entry_key, kv::Consistency::kSnapshot, start_ts}, deadline));
    if (holder.found && holder.value != planned[i].op->key) {
      return UniqueViolation(*c.index, "document '" + holder.value.substr(0, 128) + "'")
          .WithContext(planned[i].where);
    }
  }
  return mutations;
}

Result<uint64_t> ClusterKv::CommitOps(const std::vector<kv::BatchOp>& ops,
                                      Clock::time_point deadline) {
  for (int attempt = 0;; ++attempt) {
    ASSIGN_OR_RETURN(uint64_t start_ts, FreshTimestamp(deadline));
    ActiveStart active(this, start_ts);  // the GC keeps what this attempt reads
    uint64_t commit_below = 0;
    auto planned = PlanOps(ops, start_ts, deadline, &commit_below);
    Result<uint64_t> committed = planned.status();
    if (planned.ok()) {
      committed = CommitMutations(start_ts, std::move(*planned), deadline, commit_below);
    }
    if (committed.ok()) return committed;
    const Status& s = committed.status();
    // A failed condition found while planning is the answer; at commit it is a race.
    const bool planning = !planned.ok();
    if ((planning && s.code() != StatusCode::kOutOfRange) || !ShouldRereadAndRetry(s) ||
        Expired(deadline)) {
      return s;
    }
    retries_++;
    Backoff(attempt, deadline);
  }
}

Status CheckDocument(const DocRules& rules, const std::string& key, const nlohmann::json& doc,
                     size_t max_key_bytes) {
  if (rules.schema) RETURN_IF_ERROR(rules.schema->Check(doc));
  for (const auto& index : rules.indexes) {
    auto e = document::EntryFor(index, key, doc);
    if (e && e->key.size() > max_key_bytes) {
      return Status::InvalidArgument("the document's values for index '" + index.name + "' take " +
                                     std::to_string(e->key.size()) +
                                     " bytes, above the key limit of " +
                                     std::to_string(max_key_bytes))
          .WithDetail("reason", "INDEX_KEY_TOO_LARGE");
    }
  }
  return Status::OK();
}

bool ShouldRereadAndRetry(const Status& s) {
  return (s.code() == StatusCode::kAborted &&
          (Reason(s) == "WRITE_CONFLICT" || Reason(s) == "TOO_OLD")) ||
         s.code() == StatusCode::kFailedPrecondition || s.code() == StatusCode::kOutOfRange;
}

Status UniqueViolation(const document::IndexSpec& index, const std::string& holder) {
  return Status::Aborted("unique index '" + index.name + "': " + holder + " has the same values")
      .WithDetail("reason", "UNIQUE")
      .WithDetail("index", index.name);
}

void AppendEntryMutations(const DocRules& rules, const std::string& key,
                          const nlohmann::json* old_doc, const nlohmann::json* doc,
                          std::vector<txn::TxnMutation>* mutations,
                          std::vector<UniqueClaim>* claims) {
  for (const auto& index : rules.delete_only) {
    auto before = old_doc ? document::EntryFor(index, key, *old_doc) : std::nullopt;
    auto after = doc ? document::EntryFor(index, key, *doc) : std::nullopt;
    if (!before || before == after) continue;
    mutations->push_back({txn::LockKind::kDelete,
                          mvcc::EncodeRowKey(kTenant, index.id, before->key), "", std::nullopt});
  }
  for (const auto& index : rules.indexes) {
    auto before = old_doc ? document::EntryFor(index, key, *old_doc) : std::nullopt;
    auto after = doc ? document::EntryFor(index, key, *doc) : std::nullopt;
    if (before == after) continue;
    if (before) {
      mutations->push_back({txn::LockKind::kDelete,
                            mvcc::EncodeRowKey(kTenant, index.id, before->key), "", std::nullopt});
    }
    if (!after) continue;
    std::optional<uint64_t> must_be_absent;
    if (index.unique) {
      claims->push_back({&index, after->key, mutations->size()});
      must_be_absent = 0;
    }
    mutations->push_back({txn::LockKind::kPut, mvcc::EncodeRowKey(kTenant, index.id, after->key),
                          after->value, must_be_absent});
  }
}

Result<kv::WriteResult> ClusterKv::WriteDocument(
    const kv::CollectionInfo& info, const std::string& key, const std::optional<std::string>& value,
    std::optional<uint64_t> if_version, const std::string& request_id, Clock::time_point deadline) {
  if (!request_id.empty()) {
    return Status::InvalidArgument(
        "a write to a collection with a schema or indexes is a transaction and takes no "
        "request id (a retry could apply twice); make retries safe with if_version");
  }
  ASSIGN_OR_RETURN(DocRules rules, RulesOf(info));
  std::optional<json> doc;
  if (value) {
    ASSIGN_OR_RETURN(doc, document::ParseDocument(*value));
    RETURN_IF_ERROR(CheckDocument(rules, key, *doc, options_.limits.max_key_bytes));
  }
  const std::string row = mvcc::EncodeRowKey(kTenant, info.id, key);
  for (int attempt = 0;; ++attempt) {
    ASSIGN_OR_RETURN(uint64_t start_ts, FreshTimestamp(deadline));
    ActiveStart active(this, start_ts);  // the GC keeps what this attempt reads
    auto read = GetById(info.id, {info.name, key, kv::Consistency::kSnapshot, start_ts}, deadline);
    if (!read.ok() && read.status().code() == StatusCode::kOutOfRange && !Expired(deadline)) {
      Backoff(attempt, deadline);  // the GC passed start_ts before the hold was seen: again
      continue;
    }
    ASSIGN_OR_RETURN(auto old, std::move(read));
    const uint64_t current = old.found ? old.version : 0;
    if (if_version && *if_version != current) {
      return Status::FailedPrecondition("key '" + key.substr(0, 128) + "' is at version " +
                                        std::to_string(current) + ", not " +
                                        std::to_string(*if_version))
          .WithDetail("current_version", std::to_string(current));
    }
    std::optional<json> old_doc;
    if (old.found) {
      if (auto d = document::ParseDocument(old.value); d.ok()) old_doc = std::move(*d);
    }
    std::vector<txn::TxnMutation> mutations;
    mutations.push_back({value ? txn::LockKind::kPut : txn::LockKind::kDelete, row,
                         value.value_or(std::string()), std::nullopt});
    std::vector<UniqueClaim> claims;
    AppendEntryMutations(rules, key, old_doc ? &*old_doc : nullptr, doc ? &*doc : nullptr,
                         &mutations, &claims);
    for (const auto& c : claims) {
      ASSIGN_OR_RETURN(
          auto holder,
          GetById(c.index->id, {"", c.entry_key, kv::Consistency::kSnapshot, start_ts}, deadline));
      if (holder.found && holder.value != key)
        return UniqueViolation(*c.index, "document '" + holder.value.substr(0, 128) + "'");
    }
    auto committed = CommitMutations(start_ts, std::move(mutations), deadline, info.lease_end_ts);
    if (committed.ok()) return kv::WriteResult{*committed, old.found};
    const Status& s = committed.status();
    // Another write to the document, or to a unique entry, after start_ts: read again.
    if (!ShouldRereadAndRetry(s) || Expired(deadline)) return s;
    retries_++;
    Backoff(attempt, deadline);
  }
}

Status ClusterKv::ScanPlan(const kv::CollectionInfo& info, const query::Plan& plan,
                           uint64_t read_ts, const std::string& from, Clock::time_point deadline,
                           const DocVisitor& each) {
  if (plan.kind == query::Plan::Kind::kCollectionScan) {
    kv::ScanRequest s;
    s.start = from;
    s.consistency = kv::Consistency::kSnapshot;
    s.at = read_ts;
    for (;;) {
      ASSIGN_OR_RETURN(auto page, ScanById(info.id, s, options_.limits.max_scan_limit, deadline));
      for (auto& item : page.items) {
        ASSIGN_OR_RETURN(bool more, each(std::move(item.key), std::move(item.value), item.version));
        if (!more) return Status::OK();
      }
      if (!page.next) return Status::OK();
      s.start = std::move(*page.next);
    }
  }
  // An index scan: each page of entries, then their documents, a multi-get at a time.
  constexpr size_t kFetch = 1000;
  bool stopped = false;
  return ScanIndexKeys(plan, read_ts, deadline, [&](std::vector<std::string>& all) -> Status {
    for (size_t i = 0; i < all.size() && !stopped; i += kFetch) {
      const size_t n = std::min(kFetch, all.size() - i);
      std::vector<std::string> keys(std::make_move_iterator(all.begin() + i),
                                    std::make_move_iterator(all.begin() + i + n));
      ASSIGN_OR_RETURN(auto docs, MultiGetById(info.id, keys, read_ts, deadline));
      for (size_t j = 0; j < n; ++j) {
        if (!docs[j].found) return MissingDocument(*plan.index, keys[j]);
        ASSIGN_OR_RETURN(bool more,
                         each(std::move(keys[j]), std::move(docs[j].value), docs[j].version));
        if (!more) {
          stopped = true;
          break;
        }
      }
    }
    return Status::OK();
  });
}

Status ClusterKv::ScanIndexKeys(const query::Plan& plan, uint64_t read_ts,
                                Clock::time_point deadline,
                                const std::function<Status(std::vector<std::string>& keys)>& each) {
  if (plan.index->unique && !plan.has_range && plan.fixed_fields == plan.index->fields.size()) {
    // Every field of a unique index fixed: each range is [entry key, its successor),
    // and the entry's key is the range's start (value encodings are self-delimiting, so
    // no other key begins with it). Read the entries as point gets, which a row's bloom
    // filters can answer, instead of scans.
    std::vector<std::string> entry_keys;
    entry_keys.reserve(plan.ranges.size());
    for (const auto& r : plan.ranges) entry_keys.push_back(r.start);
    if (entry_keys.empty()) return Status::OK();
    ASSIGN_OR_RETURN(auto got, MultiGetById(plan.index->id, entry_keys, read_ts, deadline));
    std::vector<std::string> keys;
    for (size_t i = 0; i < got.size(); ++i) {
      if (!got[i].found) continue;
      ASSIGN_OR_RETURN(std::string key,
                       document::DocKeyOf(*plan.index, {entry_keys[i], std::move(got[i].value)}));
      keys.push_back(std::move(key));
    }
    return keys.empty() ? Status::OK() : each(keys);
  }
  for (const auto& r : plan.ranges) {
    std::string start = r.start;
    for (;;) {
      kv::ScanRequest s;
      s.start = std::move(start);
      s.end = r.end;
      s.consistency = kv::Consistency::kSnapshot;
      s.at = read_ts;
      ASSIGN_OR_RETURN(auto page,
                       ScanById(plan.index->id, s, options_.limits.max_scan_limit, deadline));
      std::vector<std::string> keys;
      keys.reserve(page.items.size());
      for (const auto& item : page.items) {
        ASSIGN_OR_RETURN(std::string key, document::DocKeyOf(*plan.index, {item.key, item.value}));
        keys.push_back(std::move(key));
      }
      if (!keys.empty()) RETURN_IF_ERROR(each(keys));
      if (!page.next) break;
      start = std::move(*page.next);
    }
  }
  return Status::OK();
}

Status ClusterKv::RulesAt(const kv::CollectionInfo& planned, uint64_t read_ts,
                          Clock::time_point deadline, DocRules* rules) {
  if (planned.lease_end_ts == 0 || read_ts < planned.lease_end_ts) return Status::OK();
  // The record may be out of date at read_ts (an index dropped since): read it again.
  ForgetCollection(planned.name);
  ASSIGN_OR_RETURN(auto info, Collection(planned.name, deadline));
  if (read_ts >= info.lease_end_ts) {
    return Status::InvalidArgument("timestamp " + std::to_string(read_ts) + " is in the future");
  }
  ASSIGN_OR_RETURN(*rules, RulesOf(info));
  return Status::OK();
}

Result<kv::QueryResult> ClusterKv::Query(const kv::QueryRequest& req) {
  const auto deadline = Clock::now() + options_.request_timeout;
  if (options_.require_query_limit && req.limit == 0) {
    return Status::InvalidArgument(
               "this server requires a limit on every query (query.require_limit): give "
               "'limit', at most " +
               std::to_string(options_.limits.max_scan_limit))
        .WithDetail("reason", "LIMIT_REQUIRED");
  }
  ASSIGN_OR_RETURN(const size_t limit, PageLimit(req.limit, options_.limits));
  ASSIGN_OR_RETURN(auto info, Collection(req.collection, deadline));
  ASSIGN_OR_RETURN(DocRules rules, RulesOf(info));
  ASSIGN_OR_RETURN(json filter_json, query::ParseJsonText(req.filter_json, "filter"));
  ASSIGN_OR_RETURN(auto filter,
                   query::ParseFilter(filter_json, rules.schema ? &*rules.schema : nullptr));
  std::vector<document::Path> sort_paths, projection;
  std::vector<bool> descending;
  for (size_t i = 0; i < req.sort.size(); ++i) {
    auto p = document::ParsePath(req.sort[i].first);
    if (!p.ok()) return p.status().WithContext("sort[" + std::to_string(i) + "]");
    sort_paths.push_back(std::move(*p));
    descending.push_back(req.sort[i].second);
  }
  for (size_t i = 0; i < req.projection.size(); ++i) {
    auto p = document::ParsePath(req.projection[i]);
    if (!p.ok()) return p.status().WithContext("projection[" + std::to_string(i) + "]");
    projection.push_back(std::move(*p));
  }
  const Order order(descending);
  std::optional<Position> after;
  kv::QueryResult out;
  if (!req.cursor.empty()) {
    ASSIGN_OR_RETURN(auto c, DecodeCursor(req.cursor, sort_paths.size()));
    out.read_ts = c.first;
    after = std::move(c.second);
  } else if (req.consistency == kv::Consistency::kSnapshot) {
    if (req.at == 0) return Status::InvalidArgument("a snapshot query needs a timestamp (at)");
    out.read_ts = req.at;
  } else if (req.consistency == kv::Consistency::kLinearizable) {
    ASSIGN_OR_RETURN(out.read_ts, FreshTimestamp(deadline));
  } else {
    return Status::InvalidArgument("a query reads at one timestamp: linearizable or snapshot");
  }
  if (req.cursor.empty()) RETURN_IF_ERROR(RulesAt(info, out.read_ts, deadline, &rules));
  const auto queryable = rules.QueryableAt(out.read_ts);
  // An index is walked one way: a sort whose paths go both ways is gathered and sorted
  // whatever the plan.
  const bool one_way = std::adjacent_find(descending.begin(), descending.end(),
                                          std::not_equal_to<>()) == descending.end();
  query::Plan plan =
      query::ChoosePlan(filter, queryable, one_way ? sort_paths : std::vector<document::Path>{},
                        one_way && !descending.empty() && descending[0]);
  ActiveStart active(this, out.read_ts);  // the GC keeps the snapshot while it is read

  struct Hit {
    Position pos;
    std::string value;
    uint64_t version = 0;
  };
  std::vector<Hit> hits;
  uint64_t examined = 0;
  // Checks one document; false stops the scan (enough hits in key order).
  auto consider = [&](std::string key, std::string value, uint64_t version) -> Result<bool> {
    ++examined;
    auto doc = document::ParseDocument(value);
    if (!doc.ok() || !query::Matches(filter, *doc)) return true;
    Hit h;
    h.pos.key = std::move(key);
    for (const auto& p : sort_paths)
      h.pos.sort.push_back(document::EncodeValue(document::Lookup(*doc, p)));
    if (after && !order.Before(*after, h.pos)) return true;
    h.value = projection.empty() ? std::move(value) : query::Project(*doc, projection).dump();
    h.version = version;
    hits.push_back(std::move(h));
    if (hits.size() > kMaxSortRows) {
      return Status::InvalidArgument("the query matches more than " + std::to_string(kMaxSortRows) +
                                     " documents to sort; add an index or narrow the filter")
          .WithDetail("reason", "SORT_TOO_LARGE");
    }
    // In key order (no sort, a collection scan) one more than the page is enough.
    return !(sort_paths.empty() && plan.kind == query::Plan::Kind::kCollectionScan &&
             hits.size() > limit);
  };
  std::string from;
  if (after && sort_paths.empty() && plan.kind == query::Plan::Kind::kCollectionScan) {
    from = after->key + std::string(1, '\0');
  }
  // The shards check the filter where the documents are and answer their matches.
  bool index_scan = plan.kind == query::Plan::Kind::kIndexScan;
  size_t answers = 0;  // of an ordered walk
  auto want = [&]() -> uint32_t {
    // An ordered walk: the page, the item after it and one more, so that the first answer
    // usually holds a match that sorts after both (see `enough`); twice as many with each
    // answer after that (a long run of equal values, or a filter that passes few), and
    // no more entries read a call than that.
    if (plan.ordered) {
      return static_cast<uint32_t>(
          std::min<size_t>(kMaxShardMatches, (limit + 2) << std::min<size_t>(answers, 12)));
    }
    if (!sort_paths.empty() || index_scan) return kMaxShardMatches;
    return static_cast<uint32_t>(std::min(kMaxShardMatches, limit + 1 - hits.size()));
  };
  v1::ShardQueryRequest t;
  t.set_filter_json(req.filter_json);
  for (const auto& p : req.projection) t.add_projection(p);
  for (const auto& [p, desc] : req.sort) t.add_sort(p);
  t.set_limit(want());
  if (plan.ordered) t.set_max_examined(want());
  std::mutex mu;  // answers for an index scan's keys come from several shards at once
  auto take = [&](v1::ShardQueryResponse& resp, v1::ShardQueryRequest* next) -> Result<bool> {
    std::lock_guard lock(mu);
    if (index_scan && resp.missing_size() > 0) return MissingDocument(*plan.index, resp.missing(0));
    examined += resp.examined();
    for (auto& m : *resp.mutable_matches()) {
      if (static_cast<size_t>(m.sort_values_size()) != sort_paths.size()) {
        return Status::Internal("a storage node answered a query without its sort values");
      }
      Hit h;
      h.pos.key = std::move(*m.mutable_key());
      for (auto& v : *m.mutable_sort_values()) h.pos.sort.push_back(std::move(v));
      if (after && !order.Before(*after, h.pos)) continue;
      h.value = std::move(*m.mutable_value());
      h.version = m.version();
      hits.push_back(std::move(h));
      if (hits.size() > kMaxSortRows) {
        return Status::InvalidArgument("the query matches more than " +
                                       std::to_string(kMaxSortRows) +
                                       " documents to sort; add an index or narrow the filter")
            .WithDetail("reason", "SORT_TOO_LARGE");
      }
      if (sort_paths.empty() && !index_scan && hits.size() > limit) return false;
    }
    ++answers;
    next->set_limit(want());
    if (plan.ordered) next->set_max_examined(want());
    return true;
  };
  // An ordered walk's entries come in sort order, so every match still to come sorts at
  // or after the last one met (the highest so far; descending, the lowest). Once the
  // page's next item (the one after the cursor the page ends with) sorts strictly before
  // that, no match to come can take its place or one before it: the page is complete.
  // (With equal sort values the key decides, and the walk is not in key order among
  // them, so an equal one is not enough.) A walk in the page's exact order
  // (Plan::exactly_ordered) is done at once.
  //
  // A walk of a whole index for a filter no index narrows can meet few matches: past
  // query_walk_budget documents without a page, it gives way to a scan of the collection,
  // which reads the documents in key order without the entries (and gathers as before).
  const bool whole_walk = plan.ordered && plan.fixed_fields == 0 && !plan.has_range;
  const size_t walk_budget = std::max<size_t>(options_.query_walk_budget, 4 * limit);
  bool abandoned = false;
  auto enough = [&]() -> bool {
    std::lock_guard lock(mu);
    if (whole_walk && hits.size() <= limit && examined > walk_budget) {
      abandoned = true;
      return true;
    }
    if (hits.size() <= limit) return false;
    if (plan.exactly_ordered) return true;
    auto sorts_before = [&](const std::vector<std::string>& a, const std::vector<std::string>& b) {
      return plan.descending ? b < a : a < b;
    };
    const auto last = std::max_element(hits.begin(), hits.end(), [&](const Hit& a, const Hit& b) {
      return sorts_before(a.pos.sort, b.pos.sort);
    });
    const std::vector<std::string> last_sort = last->pos.sort;
    std::nth_element(hits.begin(), hits.begin() + static_cast<std::ptrdiff_t>(limit), hits.end(),
                     [&](const Hit& a, const Hit& b) { return order.Before(a.pos, b.pos); });
    return sorts_before(hits[limit].pos.sort, last_sort);
  };
  Status s;
  bool joined = false;  // the index's entries and documents read together
  json explain_walk;    // an ordered walk that gave way to a collection scan
  if (index_scan) {
    // An ordered walk after a cursor starts at the cursor's sort values: the entries
    // before them sort before the cursor.
    query::Plan walk = plan;
    if (plan.ordered && after && walk.ranges.size() == 1) {
      walk.ranges[0] = query::OrderedRange(plan, sort_paths, after->sort);
    }
    s = QueryIndex(
        info.id, walk, out.read_ts, t, deadline, take,
        [&] {
          hits.clear();
          examined = 0;
        },
        &joined, plan.ordered ? std::function<bool()>(enough) : std::function<bool()>());
    if (s.ok() && abandoned) {
      explain_walk = {{"index", plan.index->name}, {"examined", examined}};
      plan = query::Plan{};
      index_scan = false;
      hits.clear();
      examined = 0;
      t.set_limit(want());
      t.clear_max_examined();
    }
  }
  if (!index_scan) {
    t.set_start(from);
    const std::string prefix = mvcc::CollectionPrefix(kTenant, info.id);
    s = QueryRange(info.id, mvcc::EncodeRowKey(kTenant, info.id, from),
                   mvcc::PrefixSuccessor(prefix), out.read_ts, std::move(t), deadline, take);
  }
  bool pushed = true;
  if (s.code() == StatusCode::kUnimplemented) {
    // A storage node of a version without ShardKv.Query: read the rows here instead.
    pushed = false;
    hits.clear();
    examined = 0;
  } else {
    RETURN_IF_ERROR(s);
  }
  if (!pushed) RETURN_IF_ERROR(ScanPlan(info, plan, out.read_ts, from, deadline, consider));
  std::sort(hits.begin(), hits.end(),
            [&](const Hit& a, const Hit& b) { return order.Before(a.pos, b.pos); });
  if (hits.size() > limit) {
    hits.resize(limit);
    out.cursor = EncodeCursor(out.read_ts, hits.back().pos);
  }
  for (auto& h : hits) out.items.push_back({std::move(h.pos.key), std::move(h.value), h.version});
  if (req.explain) {
    json e = plan.Explain();
    e["examined"] = examined;
    e["pushed_down"] = pushed;
    if (index_scan) e["index_join"] = joined;
    if (!explain_walk.is_null()) e["abandoned_walk"] = explain_walk;
    out.plan_json = e.dump();
  }
  return out;
}

Result<kv::AggregateResult> ClusterKv::Aggregate(const kv::AggregateRequest& req) {
  const auto deadline = Clock::now() + options_.request_timeout;
  ASSIGN_OR_RETURN(auto info, Collection(req.collection, deadline));
  ASSIGN_OR_RETURN(DocRules rules, RulesOf(info));
  ASSIGN_OR_RETURN(json filter_json, query::ParseJsonText(req.filter_json, "filter"));
  ASSIGN_OR_RETURN(json group_by, query::ParseJsonText(req.group_by_json, "group_by"));
  ASSIGN_OR_RETURN(json aggregates, query::ParseJsonText(req.aggregates_json, "aggregates"));
  ASSIGN_OR_RETURN(auto filter,
                   query::ParseFilter(filter_json, rules.schema ? &*rules.schema : nullptr));
  ASSIGN_OR_RETURN(auto spec, query::ParseAggregate(group_by, aggregates));
  kv::AggregateResult out;
  if (req.consistency == kv::Consistency::kSnapshot) {
    if (req.at == 0)
      return Status::InvalidArgument("a snapshot aggregation needs a timestamp (at)");
    out.read_ts = req.at;
  } else if (req.consistency == kv::Consistency::kLinearizable) {
    ASSIGN_OR_RETURN(out.read_ts, FreshTimestamp(deadline));
  } else {
    return Status::InvalidArgument(
        "an aggregation reads at one timestamp: linearizable or snapshot");
  }
  RETURN_IF_ERROR(RulesAt(info, out.read_ts, deadline, &rules));
  const auto queryable = rules.QueryableAt(out.read_ts);
  const query::Plan plan = query::ChoosePlan(filter, queryable);
  ActiveStart active(this, out.read_ts);
  std::optional<query::Aggregator> agg(std::in_place, spec);
  uint64_t examined = 0, matched = 0;
  // Each shard aggregates its documents; the router merges the partial states.
  v1::ShardQueryRequest t;
  t.set_filter_json(req.filter_json);
  t.set_group_by_json(req.group_by_json);
  t.set_aggregates_json(req.aggregates_json);
  std::mutex mu;
  auto merge = [&](v1::ShardQueryResponse& resp, v1::ShardQueryRequest*) -> Result<bool> {
    std::lock_guard lock(mu);
    if (plan.index && resp.missing_size() > 0) return MissingDocument(*plan.index, resp.missing(0));
    examined += resp.examined();
    matched += resp.matched();
    Status m = agg->MergePartial(resp.partial());
    if (!m.ok() && Reason(m) != "TOO_MANY_GROUPS") {
      return Status::Internal("a storage node sent a bad partial aggregate: " + m.message());
    }
    RETURN_IF_ERROR(m);
    return true;
  };
  Status s;
  bool joined = false;
  if (plan.kind == query::Plan::Kind::kIndexScan) {
    s = QueryIndex(
        info.id, plan, out.read_ts, t, deadline, merge,
        [&] {
          agg.emplace(spec);
          examined = matched = 0;
        },
        &joined);
  } else {
    s = QueryCollection(info.id, out.read_ts, t, deadline, merge);
  }
  bool pushed = true;
  if (s.code() == StatusCode::kUnimplemented) {
    // A storage node of a version without ShardKv.Query: aggregate here instead.
    pushed = false;
    agg.emplace(spec);
    examined = matched = 0;
  } else {
    RETURN_IF_ERROR(s);
  }
  if (!pushed) {
    RETURN_IF_ERROR(ScanPlan(info, plan, out.read_ts, "", deadline,
                             [&](std::string, std::string value, uint64_t) -> Result<bool> {
                               ++examined;
                               auto doc = document::ParseDocument(value);
                               if (!doc.ok() || !query::Matches(filter, *doc)) return true;
                               ++matched;
                               RETURN_IF_ERROR(agg->Add(*doc));
                               return true;
                             }));
  }
  out.groups_json = agg->Output()["groups"].dump();
  if (req.explain) {
    json e = plan.Explain();
    e["examined"] = examined;
    e["matched"] = matched;
    e["pushed_down"] = pushed;
    if (plan.kind == query::Plan::Kind::kIndexScan) e["index_join"] = joined;
    out.plan_json = e.dump();
  }
  return out;
}

}  // namespace gojodb::gateway
