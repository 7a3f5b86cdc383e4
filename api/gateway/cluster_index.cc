// Index builds and drops on collections in use: the router adds the index as
// "building" in the catalog, waits out the collection's schema lease (after which every
// write that commits keeps the index), backfills the documents written before, a page
// per transaction, and makes the index public. See docs/architecture/documents.md,
// "Index builds and drops".
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "api/gateway/call_util.h"
#include "api/gateway/cluster_kv.h"
#include "api/grpc/convert.h"
#include "core/mvcc/key_codec.h"
#include "core/mvcc/timestamp_oracle.h"
#include "internal/failpoint.h"
#include "internal/names.h"

namespace gojodb::gateway {
namespace {

constexpr uint32_t kTenant = controller::kDefaultTenantId;
// Documents per backfill transaction: a page that meets a write is read again at half
// its size (so hot documents narrow down to pages of their own), one that commits lets
// the next be twice as large.
constexpr size_t kFirstPage = 64;
constexpr size_t kMaxPage = 4096;
// The progress a build records in the catalog (for a resume): at most this often.
constexpr auto kProgressEvery = std::chrono::seconds(1);

const kv::IndexSpec* FindIndex(const kv::CollectionInfo& info, const std::string& name) {
  for (const auto& i : info.indexes) {
    if (i.name == name) return &i;
  }
  return nullptr;
}

const kv::IndexSpec* FindIndexById(const kv::CollectionInfo& info, uint32_t id) {
  for (const auto& i : info.indexes) {
    if (i.id == id) return &i;
  }
  return nullptr;
}

std::string Short(const std::string& key) { return key.substr(0, 128); }

std::string OrDefaultName(const std::string& collection) {
  return collection.empty() ? std::string("default") : collection;
}

// A page tried this often without success leaves the build where it is (resumable).
constexpr int kMaxPageAttempts = 60;

}  // namespace

Result<kv::CollectionInfo> ClusterKv::ChangeIndex(IndexChange change, const std::string& collection,
                                                  const kv::IndexSpec& index,
                                                  Clock::time_point deadline) {
  v1::IndexChangeRequest req;
  req.set_collection(OrDefaultName(collection));
  auto* p = req.mutable_index();
  p->set_name(index.name);
  for (const auto& f : index.fields) p->add_fields(f);
  p->set_unique(index.unique);
  p->set_id(index.id);
  p->set_state(index.state);
  p->set_usable_from_ts(index.usable_from_ts);
  p->set_build_resume(index.build_resume);
  p->set_error(index.error);
  v1::CollectionInfo resp;
  RETURN_IF_ERROR(CallController(deadline, [&](ControllerConn& c, grpc::ClientContext* ctx) {
    resp.Clear();
    switch (change) {
      case IndexChange::kAdd:
        return rpc::FromGrpc(c.controller->AddIndex(ctx, req, &resp), ctx);
      case IndexChange::kUpdate:
        return rpc::FromGrpc(c.controller->UpdateIndex(ctx, req, &resp), ctx);
      case IndexChange::kRemove:
        break;
    }
    return rpc::FromGrpc(c.controller->RemoveIndex(ctx, req, &resp), ctx);
  }));
  ForgetCollection(collection);  // this router plans with the change from now on
  return rpc::FromProto(resp);
}

Status ClusterKv::WaitForTimestamp(uint64_t ts, Clock::time_point deadline) {
  for (;;) {
    ASSIGN_OR_RETURN(uint64_t now, FreshTimestamp(deadline));
    if (now > ts) return Status::OK();
    if (stopping_builds_) return Status::Cancelled("the router is stopping");
    const auto wait = std::chrono::milliseconds(
        std::max<uint64_t>(1, mvcc::PhysicalMillis(ts) - mvcc::PhysicalMillis(now)));
    if (Clock::now() + wait > deadline) {
      return Status::DeadlineExceeded("timed out waiting for the schema lease to pass");
    }
    std::this_thread::sleep_for(std::min<Clock::duration>(wait, std::chrono::milliseconds(200)));
  }
}

Status ClusterKv::BuildIndex(const std::string& collection, uint32_t id) {
  const auto step = [&] { return Clock::now() + options_.request_timeout; };
  // 1. Every router that may plan writes without the index plans with a record read
  // before it was added: their writes commit below that read's timestamp plus the
  // lease. Past that, every write that commits keeps the index.
  // It starts delete_only: no router adds entries until every router that commits
  // deletes them (else an entry added by one could be left behind by another, unaware
  // of the index, that changes the document). Then building: every router keeps the
  // entries of what it writes. Each step waits out the lease.
  ASSIGN_OR_RETURN(uint64_t changed_by, FreshTimestamp(step()));
  ForgetCollection(collection);
  ASSIGN_OR_RETURN(auto info, Collection(collection, step()));
  const kv::IndexSpec* spec = FindIndexById(info, id);
  const auto lease = info.schema_lease_ms << mvcc::kLogicalBits;
  const auto lease_wait = [&] {
    return Clock::now() + std::chrono::milliseconds(info.schema_lease_ms) +
           options_.request_timeout;
  };
  if (spec && spec->state == kv::kIndexDeleteOnly) {
    RETURN_IF_ERROR(WaitForTimestamp(changed_by + lease, lease_wait()));
    kv::IndexSpec next = *spec;
    next.state = kv::kIndexBuilding;
    auto changed = ChangeIndex(IndexChange::kUpdate, collection, next, step());
    if (!changed.ok()) {
      const StatusCode code = changed.status().code();
      if (code == StatusCode::kNotFound || code == StatusCode::kFailedPrecondition) {
        return Status::OK();  // dropped meanwhile
      }
      return changed.status();
    }
    ASSIGN_OR_RETURN(changed_by, FreshTimestamp(step()));
    info = std::move(*changed);
    spec = FindIndexById(info, id);
  }
  if (!spec || spec->state != kv::kIndexBuilding) return Status::OK();  // done or dropped
  RETURN_IF_ERROR(WaitForTimestamp(changed_by + lease, lease_wait()));
  kv::IndexSpec index = *spec;
  document::IndexSpec dindex{index.name, index.id, {}, index.unique};
  for (const auto& f : index.fields) {
    ASSIGN_OR_RETURN(auto path, document::ParsePath(f));
    dindex.fields.push_back(std::move(path));
  }

  // 2. Backfill: the documents after build_resume, a page per transaction at a fresh
  // snapshot. Each entry is put with a check on its document's row, so a document
  // written after the snapshot (by a writer that keeps the index) fails the page, which
  // reads again.
  std::string resume = index.build_resume;
  bool first = resume.empty();
  size_t page_size = kFirstPage;
  auto recorded = Clock::now();
  const auto backfill_start = Clock::now();
  uint64_t pages = 0, documents = 0, page_retries = 0;
  for (int attempt = 0;;) {
    if (stopping_builds_) return Status::Cancelled("the router is stopping");
    if (attempt >= kMaxPageAttempts) {
      return Status::Unavailable("the backfill of index '" + index.name +
                                 "' made no progress; send the same request to resume it");
    }
    const auto deadline = step();
    // The record within its schema lease, the index still building in it: the page
    // commits below the lease's end, so no page lands after the index or its collection
    // is removed (their rows are then deleted once the GC passes that lease).
    auto current = Collection(collection, deadline);
    if (!current.ok()) {
      if (current.status().code() == StatusCode::kNotFound) return Status::OK();  // dropped
      if (current.status().code() == StatusCode::kUnavailable) {
        Backoff(attempt++, deadline);
        continue;
      }
      return current.status();
    }
    const kv::IndexSpec* still = FindIndexById(*current, id);
    if (!still || still->state != kv::kIndexBuilding) return Status::OK();  // dropped or done
    ASSIGN_OR_RETURN(const uint64_t start_ts, FreshTimestamp(deadline));
    ActiveStart active(this, start_ts);
    kv::ScanRequest scan;
    scan.start = first ? std::string() : resume + std::string(1, '\0');
    scan.consistency = kv::Consistency::kSnapshot;
    scan.at = start_ts;
    auto page = ScanById(info.id, scan, page_size, deadline);
    if (!page.ok()) {
      if (page.status().code() == StatusCode::kUnavailable ||
          page.status().code() == StatusCode::kOutOfRange) {
        Backoff(attempt++, deadline);
        continue;
      }
      return page.status();
    }
    if (page->items.empty()) break;
    failpoint::Hit("cluster_index.page_read", page->items.size());
    std::vector<txn::TxnMutation> mutations;
    std::map<std::string, std::string> claimed;  // unique entry key -> document key
    Status refused;
    for (const auto& item : page->items) {
      auto doc = document::ParseDocument(item.value);
      if (!doc.ok()) continue;  // not a document: writers index it as nothing too
      auto entry = document::EntryFor(dindex, item.key, *doc);
      if (!entry) continue;
      if (entry->key.size() > options_.limits.max_key_bytes) {
        refused = Status::InvalidArgument(
            "document '" + Short(item.key) + "' gives index '" + index.name + "' an entry of " +
            std::to_string(entry->key.size()) + " bytes, above the key limit");
        break;
      }
      std::optional<uint64_t> must_be_absent;
      if (dindex.unique) {
        if (auto [it, fresh] = claimed.emplace(entry->key, item.key); !fresh) {
          refused =
              Status::Aborted("documents '" + Short(it->second) + "' and '" + Short(item.key) +
                              "' have the same values of unique index '" + index.name + "'");
          break;
        }
        auto holder =
            GetById(index.id, {"", entry->key, kv::Consistency::kSnapshot, start_ts}, deadline);
        if (!holder.ok()) {
          refused = holder.status();
          break;
        }
        if (holder->found) {
          if (holder->value == item.key) continue;  // its writer kept it already
          refused =
              Status::Aborted("documents '" + Short(holder->value) + "' and '" + Short(item.key) +
                              "' have the same values of unique index '" + index.name + "'");
          break;
        }
        must_be_absent = 0;
      }
      mutations.push_back({txn::LockKind::kCheck, mvcc::EncodeRowKey(kTenant, info.id, item.key),
                           "", std::nullopt});
      mutations.push_back({txn::LockKind::kPut, mvcc::EncodeRowKey(kTenant, index.id, entry->key),
                           entry->value, must_be_absent});
    }
    if (!refused.ok()) {
      if (refused.code() == StatusCode::kUnavailable || ShouldRereadAndRetry(refused)) {
        Backoff(attempt++, deadline);
        continue;
      }
      // The index cannot hold these documents: the build fails for good.
      kv::IndexSpec failed = index;
      failed.state = kv::kIndexFailed;
      failed.error = refused.message();
      RETURN_IF_ERROR(ChangeIndex(IndexChange::kUpdate, collection, failed, step()).status());
      return Status::OK();
    }
    if (!mutations.empty()) {
      auto committed =
          CommitTransaction(start_ts, std::move(mutations), deadline, current->lease_end_ts);
      if (!committed.ok()) {
        const Status& s = committed.status();
        if (ShouldRereadAndRetry(s) || s.code() == StatusCode::kUnavailable ||
            s.code() == StatusCode::kAborted) {
          retries_++;
          ++page_retries;
          page_size = std::max<size_t>(1, page_size / 2);
          // A conflict is progress elsewhere: only pages that fail alone count.
          if (page_size == 1 || s.code() == StatusCode::kUnavailable) Backoff(attempt++, deadline);
          continue;  // the page again, at a new snapshot
        }
        return s;
      }
    }
    attempt = 0;
    ++pages;
    documents += page->items.size();
    page_size = std::min(kMaxPage, page_size * 2);
    first = false;
    resume = page->items.back().key;
    if (!page->next) break;
    if (Clock::now() - recorded < kProgressEvery) continue;
    recorded = Clock::now();
    kv::IndexSpec progress = index;
    progress.state = kv::kIndexBuilding;
    progress.build_resume = resume;
    auto changed = ChangeIndex(IndexChange::kUpdate, collection, progress, step());
    if (!changed.ok()) {
      // Dropped meanwhile (gone, or no longer building): nothing more to build.
      const StatusCode code = changed.status().code();
      if (code == StatusCode::kNotFound || code == StatusCode::kFailedPrecondition) {
        return Status::OK();
      }
      return changed.status();
    }
    // Dropped meanwhile, or made public by another router that builds it too.
    const kv::IndexSpec* now = FindIndexById(*changed, id);
    if (!now || now->state != kv::kIndexBuilding) return Status::OK();
  }
  spdlog::info(
      "index '{}' of collection '{}': backfilled {} documents in {} pages ({} read again) "
      "in {} ms",
      index.name, info.name, documents, pages, page_retries,
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - backfill_start).count());
  // 3. Public: complete for reads at or after a timestamp taken after the last page
  // committed (every later write keeps it).
  ASSIGN_OR_RETURN(const uint64_t usable_from, FreshTimestamp(step()));
  kv::IndexSpec done = index;
  done.state = kv::kIndexPublic;
  done.usable_from_ts = usable_from;
  done.build_resume.clear();
  auto changed = ChangeIndex(IndexChange::kUpdate, collection, done, step());
  if (!changed.ok() && changed.status().code() != StatusCode::kNotFound &&
      changed.status().code() != StatusCode::kFailedPrecondition) {
    return changed.status();
  }
  return Status::OK();
}

Result<kv::CollectionInfo> ClusterKv::CreateIndex(const std::string& collection,
                                                  const kv::IndexSpec& index,
                                                  std::chrono::milliseconds wait) {
  const auto deadline = Clock::now() + options_.request_timeout;
  RETURN_IF_ERROR(ValidateName("collection", OrDefaultName(collection)));
  RETURN_IF_ERROR(ValidateName("index", index.name));
  if (index.fields.empty()) return Status::InvalidArgument("an index needs at least one field");
  kv::IndexSpec def{index.name, index.fields, index.unique};
  ASSIGN_OR_RETURN(auto info, ChangeIndex(IndexChange::kAdd, collection, def, deadline));
  const kv::IndexSpec* added = FindIndex(info, index.name);
  if (!added) return Status::Internal("the catalog did not keep index '" + index.name + "'");
  if (added->state == kv::kIndexPublic) return info;
  const uint32_t id = added->id;
  std::shared_ptr<Build> build;
  {
    std::lock_guard lock(builds_mu_);
    auto& b = builds_[id];
    if (!b || b->done) {
      // Not running here: (re)start it from the catalog's progress.
      b = std::make_shared<Build>();
      build_pool_->Submit([this, collection, id, b] {
        Status s = BuildIndex(collection, id);
        std::lock_guard lock(builds_mu_);
        b->done = true;
        b->status = s;
        builds_cv_.notify_all();
      });
    }
    build = b;
  }
  {
    std::unique_lock lock(builds_mu_);
    builds_cv_.wait_for(lock, wait.count() > 0 ? wait : options_.request_timeout,
                        [&] { return build->done; });
    if (build->done && !build->status.ok()) {
      return build->status.WithContext("building index '" + index.name + "'");
    }
  }
  ForgetCollection(collection);
  ASSIGN_OR_RETURN(info, Collection(collection, Clock::now() + options_.request_timeout));
  const kv::IndexSpec* now = FindIndexById(info, id);
  if (now && now->state == kv::kIndexFailed) {
    const bool unique = now->error.find("unique index") != std::string::npos;
    return Status::Aborted("index '" + index.name + "' cannot be built: " + now->error)
        .WithDetail("reason", unique ? "UNIQUE" : "INDEX_BUILD_FAILED")
        .WithDetail("index", index.name);
  }
  return info;
}

Result<kv::CollectionInfo> ClusterKv::DropIndex(const std::string& collection,
                                                const std::string& name) {
  const auto deadline = Clock::now() + options_.request_timeout;
  RETURN_IF_ERROR(ValidateName("index", name));
  ForgetCollection(collection);
  ASSIGN_OR_RETURN(auto info, Collection(collection, deadline));
  const kv::IndexSpec* found = FindIndex(info, name);
  if (!found) {
    return Status::NotFound("collection '" + info.name + "' has no index '" + name + "'");
  }
  kv::IndexSpec index = *found;
  if (index.state != kv::kIndexDropping && index.state != kv::kIndexFailed) {
    // Queries stop using it at once; writers keep it until no router can plan a query
    // with a record that shows it public: one schema lease after this change.
    index.state = kv::kIndexDropping;
    ASSIGN_OR_RETURN(info, ChangeIndex(IndexChange::kUpdate, collection, index, deadline));
  }
  if (index.state == kv::kIndexDropping) {
    ASSIGN_OR_RETURN(const uint64_t changed_by, FreshTimestamp(deadline));
    RETURN_IF_ERROR(WaitForTimestamp(
        changed_by + (info.schema_lease_ms << mvcc::kLogicalBits),
        Clock::now() + std::chrono::milliseconds(info.schema_lease_ms) + options_.request_timeout));
  }
  // Its entries stay in the keyspace, unreachable (index ids are never reused).
  return ChangeIndex(IndexChange::kRemove, collection, index,
                     Clock::now() + options_.request_timeout);
}

}  // namespace gojodb::gateway
