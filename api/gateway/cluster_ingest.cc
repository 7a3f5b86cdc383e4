// Bulk ingest in the router: chunks of whole-document puts, each record accepted or
// refused on its own (docs/architecture/documents.md, "Bulk ingest").
#include <algorithm>
#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <span>
#include <system_error>
#include <thread>

#include "api/gateway/call_util.h"
#include "api/gateway/cluster_kv.h"
#include "api/grpc/convert.h"
#include "api/grpc/shard_convert.h"
#include "core/mvcc/key_codec.h"

namespace gojodb::gateway {
namespace {

using json = nlohmann::json;
constexpr uint32_t kTenant = controller::kDefaultTenantId;
// Reads of a chunk run this many at a time (they wait on the network, not the CPU).
constexpr size_t kReaders = 64;
// Parts of a chunk committing at once.
constexpr size_t kPartsInFlight = 2;
// Threads that parse a chunk's records, each given at least kRecordsPerParser.
constexpr size_t kParsers = 4;
constexpr size_t kRecordsPerParser = 1000;

Status ParallelFor(size_t n, const std::function<Status(size_t)>& fn) {
  return gateway::ParallelFor(n, kReaders, fn);
}

// The internal row that holds an ingest id's progress (collection id 0 is no
// collection's).
std::string ProgressKey(uint32_t collection, const std::string& ingest_id) {
  return "ingest/" + std::to_string(collection) + "/" + ingest_id;
}

}  // namespace

Result<std::vector<kv::GetResult>> ClusterKv::MultiGetById(uint32_t id,
                                                           const std::vector<std::string>& keys,
                                                           uint64_t at,
                                                           Clock::time_point deadline) {
  constexpr size_t kPerCall = 1000;  // a node takes up to 1,024 items per call
  std::vector<kv::GetResult> out(keys.size());
  const std::vector<std::string> rows = RowKeysOf(kTenant, id, keys);
  ASSIGN_OR_RETURN(auto groups, GroupByShard(rows, deadline));
  const auto calls = SplitGroups(groups, kPerCall);
  std::mutex mu;
  std::vector<size_t> alone;  // keys to read on their own
  RETURN_IF_ERROR(ParallelFor(calls.size(), [&](size_t c) -> Status {
    const auto& idx = calls[c];
    v1::ShardBatchResponse resp;
    Status s = CallShard(rows[idx.front()], Target::kLeader, /*write=*/false, false, deadline,
                         [&](const sharding::ShardRecord& shard, const NodeConn& node,
                             Clock::time_point d) -> Status {
                           for (size_t i : idx) {
                             if (!InRange(shard, rows[i])) return RowsMovedError();
                           }
                           v1::ShardBatchRequest req;
                           for (size_t i : idx) {
                             auto* g = req.add_items()->mutable_get();
                             g->set_row_key(rows[i]);
                             g->set_consistency(v1::READ_SNAPSHOT);
                             g->set_at(at);
                             SetRoute(shard, g->mutable_route());
                           }
                           return node.client->Batch(req, &resp, d);
                         });
    std::lock_guard lock(mu);
    if (!s.ok() || resp.results_size() != static_cast<int>(idx.size())) {
      alone.insert(alone.end(), idx.begin(), idx.end());  // the whole call: one by one
      return Status::OK();
    }
    for (size_t j = 0; j < idx.size(); ++j) {
      const auto& r = resp.results(static_cast<int>(j));
      if (!rpc::StatusOf(r).ok()) {
        alone.push_back(idx[j]);
        continue;
      }
      auto& g = out[idx[j]];
      g.found = r.get().found();
      if (g.found) {
        g.value = r.get().value();
        g.version = r.get().version();
      }
    }
    return Status::OK();
  }));
  RETURN_IF_ERROR(ParallelFor(alone.size(), [&](size_t a) -> Status {
    const size_t i = alone[a];
    ASSIGN_OR_RETURN(out[i], GetById(id, {"", keys[i], kv::Consistency::kSnapshot, at}, deadline));
    return Status::OK();
  }));
  return out;
}

Result<kv::IngestResult> ClusterKv::Ingest(const kv::IngestRequest& req) {
  const auto deadline = Clock::now() + options_.request_timeout;
  if (req.records.size() > options_.limits.max_batch_ops) {
    return Status::InvalidArgument("an ingest chunk may hold at most " +
                                   std::to_string(options_.limits.max_batch_ops) + " records");
  }
  if (req.ingest_id.size() > 128) {
    return Status::InvalidArgument("an ingest id takes at most 128 bytes");
  }
  for (;;) {
    // A chunk whose record's lease ended is written again whole with a new record: its
    // records are whole puts, so the ones written already are written again alike.
    auto out = IngestOnce(req, deadline);
    if (out.ok() || !IsSchemaLeaseEnded(out.status()) || Expired(deadline)) return out;
    ForgetCollection(req.collection);
  }
}

Result<kv::IngestResult> ClusterKv::IngestOnce(const kv::IngestRequest& req,
                                               Clock::time_point deadline) {
  ASSIGN_OR_RETURN(auto info, Collection(req.collection, deadline));
  kv::IngestResult out;
  // Records refused before anything is read: bad keys and values. The others are the
  // request's own records, copied only once one is refused.
  std::vector<kv::IngestRecord> valid;
  const std::vector<kv::IngestRecord>* records = &req.records;
  for (size_t i = 0; i < req.records.size(); ++i) {
    const auto& r = req.records[i];
    Status s = ValidateKey(r.key, options_.limits);
    if (s.ok() && r.value.size() > options_.limits.max_value_bytes) {
      s = Status::InvalidArgument("the document takes " + std::to_string(r.value.size()) +
                                  " bytes, above the value limit of " +
                                  std::to_string(options_.limits.max_value_bytes));
    }
    if (!s.ok()) {
      if (records == &req.records) {
        valid.assign(req.records.begin(), req.records.begin() + static_cast<ptrdiff_t>(i));
        records = &valid;
      }
      out.errors.push_back({r.line, std::move(s)});
    } else if (records == &valid) {
      valid.push_back(r);
    }
  }
  if (HasRules(info)) {
    ASSIGN_OR_RETURN(DocRules rules, RulesOf(info));
    if (rules.indexes.empty()) {
      // A schema alone: each document checked, then written as a plain row (no entries
      // to keep, so nothing to read first).
      std::vector<kv::IngestRecord> checked;
      checked.reserve(records->size());
      for (const auto& r : *records) {
        auto doc = document::ParseDocument(r.value);
        Status s = doc.ok() ? CheckDocument(rules, r.key, *doc, options_.limits.max_key_bytes)
                            : doc.status();
        if (s.ok()) {
          checked.push_back(r);
        } else {
          out.errors.push_back({r.line, std::move(s)});
        }
      }
      valid = std::move(checked);
      records = &valid;
    } else if (!records->empty()) {
      RETURN_IF_ERROR(IngestDocuments(info, *records, &out, deadline));
      records = nullptr;
    }
  }
  if (records && !records->empty()) RETURN_IF_ERROR(IngestRows(info, *records, &out, deadline));
  std::sort(out.errors.begin(), out.errors.end(),
            [](const auto& a, const auto& b) { return a.line < b.line; });
  if (!req.ingest_id.empty()) {
    v1::ShardWriteRequest w;
    auto* m = w.add_mutations();
    m->set_row_key(mvcc::EncodeRowKey(kTenant, 0, ProgressKey(info.id, req.ingest_id)));
    m->set_value(json{{"lines_done", req.last_line}}.dump());
    std::vector<std::string> rows{m->row_key()};
    RETURN_IF_ERROR(Write(std::move(w), std::move(rows), deadline).status());
  }
  return out;
}

Result<uint64_t> ClusterKv::IngestProgress(const std::string& collection,
                                           const std::string& ingest_id) {
  const auto deadline = Clock::now() + options_.request_timeout;
  if (ingest_id.empty() || ingest_id.size() > 128) {
    return Status::InvalidArgument("an ingest id takes 1 to 128 bytes");
  }
  ASSIGN_OR_RETURN(auto info, Collection(collection, deadline));
  ASSIGN_OR_RETURN(
      auto g, GetById(0, {"", ProgressKey(info.id, ingest_id), kv::Consistency::kLinearizable, 0},
                      deadline));
  if (!g.found) {
    return Status::NotFound("ingest '" + ingest_id + "' has written nothing to collection '" +
                            collection + "'");
  }
  json j = json::parse(g.value, nullptr, false);
  if (!j.is_object() || !j["lines_done"].is_number_unsigned()) {
    return Status::Corruption("malformed progress record of ingest '" + ingest_id + "'");
  }
  return j["lines_done"].get<uint64_t>();
}

Status ClusterKv::IngestRows(const kv::CollectionInfo& info,
                             const std::vector<kv::IngestRecord>& records, kv::IngestResult* out,
                             Clock::time_point deadline) {
  // The later of two records with one key wins: the earlier is written and overwritten.
  std::map<std::string, size_t> last;
  for (size_t i = 0; i < records.size(); ++i) last[records[i].key] = i;
  std::vector<std::string> rows;
  std::vector<const kv::IngestRecord*> chosen;
  rows.reserve(last.size());
  for (const auto& [key, i] : last) {
    rows.push_back(mvcc::EncodeRowKey(kTenant, info.id, key));
    chosen.push_back(&records[i]);
  }
  ASSIGN_OR_RETURN(auto groups, GroupByShard(rows, deadline));
  // Each group is one write on its shard. Every record is a put of a whole value, so a
  // group sent again (its outcome unknown, or a split under it) writes the same rows.
  std::function<Status(const std::vector<size_t>&)> write_group;
  write_group = [&](const std::vector<size_t>& group) -> Status {
    for (int attempt = 0;; ++attempt) {
      v1::ShardWriteRequest w;
      w.set_commit_below(info.lease_end_ts);
      std::vector<std::string> keys;
      for (size_t i : group) {
        auto* m = w.add_mutations();
        m->set_row_key(rows[i]);
        m->set_value(chosen[i]->value);
        keys.push_back(rows[i]);
      }
      auto written = Write(std::move(w), std::move(keys), deadline);
      if (written.ok()) return Status::OK();
      const Status& s = written.status();
      if (IsRowsMoved(s)) {
        std::vector<std::string> part;
        for (size_t i : group) part.push_back(rows[i]);
        ASSIGN_OR_RETURN(auto regrouped, GroupByShard(part, deadline));
        for (const auto& g : regrouped) {
          std::vector<size_t> sub;
          for (size_t j : g) sub.push_back(group[j]);
          RETURN_IF_ERROR(write_group(sub));
        }
        return Status::OK();
      }
      if (s.code() != StatusCode::kUnavailable || Expired(deadline)) return s;
      Backoff(attempt, deadline);
    }
  };
  RETURN_IF_ERROR(ParallelFor(groups.size(), [&](size_t g) { return write_group(groups[g]); }));
  out->written += records.size();
  return Status::OK();
}

Status ClusterKv::IngestDocuments(const kv::CollectionInfo& info,
                                  const std::vector<kv::IngestRecord>& records,
                                  kv::IngestResult* out, Clock::time_point deadline) {
  ASSIGN_OR_RETURN(DocRules rules, RulesOf(info));
  // Parse and check each record; the later of two with one key wins.
  struct Doc {
    const kv::IngestRecord* record = nullptr;
    json doc;
    bool superseded = false;
  };
  // The records are independent: parsed and checked on up to kParsers threads (the
  // shard has nothing of this chunk to apply meanwhile), in slices of the chunk.
  std::vector<Result<json>> parsed(records.size(), Status::Internal("not parsed"));
  const size_t parsers = std::clamp<size_t>(
      records.size() / kRecordsPerParser, 1,
      std::min<size_t>(kParsers, std::max(1u, std::thread::hardware_concurrency())));
  (void)ParallelFor(parsers, parsers, [&](size_t p) {
    for (size_t i = records.size() * p / parsers; i < records.size() * (p + 1) / parsers; ++i) {
      const auto& r = records[i];
      auto doc = rules.ParseForWrite(r.value);
      Status s = doc.ok() ? CheckDocument(rules, r.key, *doc, options_.limits.max_key_bytes)
                          : doc.status();
      parsed[i] = s.ok() ? std::move(doc) : Result<json>(std::move(s));
    }
    return Status::OK();
  });
  std::vector<Doc> docs;
  std::map<std::string, size_t> by_key;
  for (size_t i = 0; i < records.size(); ++i) {
    const auto& r = records[i];
    auto& doc = parsed[i];
    if (!doc.ok()) {
      out->errors.push_back({r.line, doc.status()});
      continue;
    }
    auto [it, fresh] = by_key.emplace(r.key, docs.size());
    if (!fresh) {
      docs[it->second].superseded = true;
      it->second = docs.size();
    }
    docs.push_back({&r, std::move(*doc), false});
  }
  std::vector<size_t> live;
  for (size_t i = 0; i < docs.size(); ++i) {
    if (!docs[i].superseded) live.push_back(i);
  }
  const uint64_t superseded = docs.size() - live.size();

  // What the documents docs[part[0]], docs[part[1]], ... need written, planned at
  // start_ts: each document's row and entries, and the removal of the entries of the
  // document it replaces. A claim on a unique entry is refused when another document
  // holds the entry at start_ts, or when `claimed` (the entries earlier lines of the
  // chunk took) has it; accepted claims join `claimed`.
  struct Planned {
    std::vector<txn::TxnMutation> mutations;  // in key order, a document row first
    uint64_t written = 0;
    std::vector<kv::IngestError> refusals;
  };
  auto plan = [&](std::span<const size_t> part, uint64_t start_ts,
                  std::set<std::string>* claimed) -> Result<Planned> {
    // The documents as they are at start_ts.
    std::vector<std::optional<json>> old(part.size());
    std::vector<std::string> keys;
    keys.reserve(part.size());
    for (size_t i : part) keys.push_back(docs[i].record->key);
    ASSIGN_OR_RETURN(auto olds, MultiGetById(info.id, keys, start_ts, deadline));
    for (size_t i = 0; i < part.size(); ++i) {
      if (!olds[i].found) continue;
      if (auto d = rules.ParseForWrite(olds[i].value); d.ok()) old[i] = std::move(*d);
    }
    // Each record's mutations, and the unique entries it claims.
    std::vector<std::vector<txn::TxnMutation>> muts(part.size());
    std::vector<std::vector<UniqueClaim>> claims(part.size());
    for (size_t i = 0; i < part.size(); ++i) {
      const Doc& d = docs[part[i]];
      muts[i].push_back({txn::LockKind::kPut, mvcc::EncodeRowKey(kTenant, info.id, d.record->key),
                         d.record->value, std::nullopt});
      AppendEntryMutations(rules, d.record->key, old[i] ? &*old[i] : nullptr, &d.doc, &muts[i],
                           &claims[i]);
    }
    // Who holds each claimed entry at start_ts: per unique index, one multi-get.
    std::vector<std::pair<size_t, size_t>> all_claims;  // (record, claim)
    for (size_t i = 0; i < claims.size(); ++i) {
      for (size_t c = 0; c < claims[i].size(); ++c) all_claims.emplace_back(i, c);
    }
    std::vector<std::optional<std::string>> holders(all_claims.size());
    std::map<uint32_t, std::vector<size_t>> by_index;
    for (size_t k = 0; k < all_claims.size(); ++k) {
      by_index[claims[all_claims[k].first][all_claims[k].second].index->id].push_back(k);
    }
    for (const auto& [index_id, ks] : by_index) {
      std::vector<std::string> entry_keys;
      for (size_t k : ks) {
        entry_keys.push_back(claims[all_claims[k].first][all_claims[k].second].entry_key);
      }
      ASSIGN_OR_RETURN(auto got, MultiGetById(index_id, entry_keys, start_ts, deadline));
      for (size_t j = 0; j < ks.size(); ++j) {
        if (got[j].found) holders[ks[j]] = std::move(got[j].value);
      }
    }
    // Unique entries are checked against the collection as of start_ts: a claim on an
    // entry another document holds is refused, even if that document lets it go in
    // this chunk; of two lines claiming one entry, the earlier wins.
    Planned out;
    std::vector<bool> refused(part.size(), false);
    for (size_t k = 0; k < all_claims.size(); ++k) {
      const auto [i, c] = all_claims[k];
      if (refused[i]) continue;
      const auto& claim = claims[i][c];
      const std::string& key = docs[part[i]].record->key;
      std::optional<std::string> other;
      if (holders[k] && *holders[k] != key) other = "document '" + holders[k]->substr(0, 128) + "'";
      if (!other && !claimed->insert(muts[i][claim.mutation].row_key).second) {
        other = "a document on an earlier line";
      }
      if (other) {
        refused[i] = true;
        out.refusals.push_back({docs[part[i]].record->line, UniqueViolation(*claim.index, *other)});
      } else if (!holders[k]) {
        // Absent at start_ts, and the commit is refused if the entry was written since:
        // absent at the commit too, without the shard reading it again.
        muts[i][claim.mutation].if_version.reset();
      }
    }
    // The accepted documents and their entries, in key order (distinct rows: a
    // document's own entries name it, and unique ones were claimed once; of two
    // mutations of one row the first would be kept).
    for (size_t i = 0; i < part.size(); ++i) {
      if (refused[i]) continue;
      ++out.written;
      for (auto& m : muts[i]) out.mutations.push_back(std::move(m));
    }
    auto& mutations = out.mutations;
    std::stable_sort(
        mutations.begin(), mutations.end(),
        [](const txn::TxnMutation& a, const txn::TxnMutation& b) { return a.row_key < b.row_key; });
    mutations.erase(std::unique(mutations.begin(), mutations.end(),
                                [](const txn::TxnMutation& a, const txn::TxnMutation& b) {
                                  return a.row_key == b.row_key;
                                }),
                    mutations.end());
    // The primary is a document row: the first one in key order.
    std::stable_partition(mutations.begin(), mutations.end(), [&](const txn::TxnMutation& m) {
      return m.row_key.compare(0, mvcc::CollectionPrefix(kTenant, info.id).size(),
                               mvcc::CollectionPrefix(kTenant, info.id)) == 0;
    });
    return out;
  };

  // A chunk of more than options_.ingest_part_docs documents goes in parts, all planned at one
  // snapshot, each committed on a thread of its own while the next is read and planned
  // (the shard's read floor, settled at that snapshot by the first part's reads, lets
  // the later reads past the commits in flight; decision 28), up to kPartsInFlight
  // commits at once so that the shard always has the next one queued. A part that meets
  // another writer's commit, or whose reads fail, stops the planning: the parts not
  // committed go as one transaction at a fresh timestamp, below.
  const size_t part_docs = options_.ingest_part_docs;
  std::vector<size_t> rest;  // documents of `live` left for that transaction
  if (live.size() <= part_docs) {
    rest = live;
  } else {
    ASSIGN_OR_RETURN(const uint64_t start_ts, FreshTimestamp(deadline));
    ActiveStart active(this, start_ts);  // the GC keeps what the parts read
    std::set<std::string> claimed;
    struct InFlight {
      size_t first = 0, end = 0;  // its documents: live[first, end)
      Planned planned;
      Result<uint64_t> committed = uint64_t{0};
      std::optional<std::thread> thread;
    };
    std::deque<std::unique_ptr<InFlight>> flying;
    bool stop = false;
    Status failed;  // a part's error that reading again would not mend
    auto finish_oldest = [&] {
      std::unique_ptr<InFlight> f = std::move(flying.front());
      flying.pop_front();
      if (f->thread) f->thread->join();
      if (f->committed.ok()) {
        out->written += f->planned.written;
        for (auto& r : f->planned.refusals) out->errors.push_back(std::move(r));
        return;
      }
      stop = true;
      if (ShouldRereadAndRetry(f->committed.status()) && !Expired(deadline)) {
        retries_++;
        rest.insert(rest.end(), live.begin() + f->first, live.begin() + f->end);
      } else if (failed.ok()) {
        failed = f->committed.status();
      }
    };
    size_t next = 0;  // the first document not planned
    while (next < live.size() && !stop) {
      // The first part is a quarter of the others: the shard starts committing sooner.
      const size_t size = next == 0 ? std::max<size_t>(1, part_docs / 4) : part_docs;
      const auto part =
          std::span<const size_t>(live).subspan(next, std::min(size, live.size() - next));
      auto planned = plan(part, start_ts, &claimed);
      if (!planned.ok()) break;  // read again below, with the rest
      auto f = std::make_unique<InFlight>();
      f->first = next;
      f->end = next + part.size();
      f->planned = std::move(*planned);
      InFlight* raw = f.get();
      auto commit = [this, raw, start_ts, deadline, lease_end = info.lease_end_ts] {
        if (raw->planned.mutations.empty()) return;
        raw->committed =
            CommitMutations(start_ts, std::move(raw->planned.mutations), deadline, lease_end);
      };
      try {
        raw->thread.emplace(commit);
      } catch (const std::system_error&) {
        commit();  // no thread to spare: one part after the other
      }
      flying.push_back(std::move(f));
      next = raw->end;
      if (flying.size() >= kPartsInFlight) finish_oldest();
    }
    while (!flying.empty()) finish_oldest();
    if (!failed.ok()) return failed;
    rest.insert(rest.end(), live.begin() + next, live.end());
    if (rest.empty()) {
      out->written += superseded;
      return Status::OK();
    }
  }

  for (int attempt = 0;; ++attempt) {
    ASSIGN_OR_RETURN(uint64_t start_ts, FreshTimestamp(deadline));
    ActiveStart active(this, start_ts);  // the GC keeps what this attempt reads
    std::set<std::string> claimed;
    auto planned = plan(rest, start_ts, &claimed);
    if (!planned.ok()) {
      if (planned.status().code() == StatusCode::kOutOfRange && !Expired(deadline)) {
        Backoff(attempt, deadline);  // the GC passed start_ts before the hold was seen
        continue;
      }
      return planned.status();
    }
    if (planned->mutations.empty()) {
      for (auto& r : planned->refusals) out->errors.push_back(std::move(r));
      return Status::OK();
    }
    auto committed =
        CommitMutations(start_ts, std::move(planned->mutations), deadline, info.lease_end_ts);
    if (committed.ok()) {
      out->written += planned->written + superseded;
      for (auto& r : planned->refusals) out->errors.push_back(std::move(r));
      return Status::OK();
    }
    if (!ShouldRereadAndRetry(committed.status()) || Expired(deadline)) return committed.status();
    retries_++;
    if (rest.size() > 1) {
      // Another writer got to one of its rows first. A big transaction that retries
      // whole would lose to a hot row again and again: the halves go on their own, so
      // that conflicts narrow down to the records that meet them.
      std::vector<kv::IngestRecord> halves[2];
      for (size_t i = 0; i < rest.size(); ++i) {
        halves[i < rest.size() / 2 ? 0 : 1].push_back(*docs[rest[i]].record);
      }
      out->written += superseded;
      for (auto& h : halves) RETURN_IF_ERROR(IngestDocuments(info, h, out, deadline));
      return Status::OK();
    }
    Backoff(attempt, deadline);
  }
}

}  // namespace gojodb::gateway
