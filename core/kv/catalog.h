// The node-local catalog of collections, persisted in the meta column family and
// cached in memory. Collection ids are never reused, so a dropped collection's rows can
// never reappear in a new collection of the same name.
#pragma once

#include <map>
#include <optional>
#include <shared_mutex>

#include "core/kv/kv_service.h"
#include "core/storage_engine/engine.h"

namespace gojodb::kv {

class Catalog {
 public:
  // Loads every collection; creates "default" on first use. `engine` is not owned.
  static Result<std::unique_ptr<Catalog>> Open(storage::Engine* engine, uint64_t now_ts);

  std::optional<CollectionInfo> Find(const std::string& name) const;
  std::vector<CollectionInfo> List() const;
  // Persists a new collection (durably) and returns it.
  Result<CollectionInfo> Create(const CollectionSpec& spec, uint64_t created_at);
  // Removes the catalog entry and every row of the collection in one durable batch.
  Status Drop(const std::string& name);

  static Status ValidateName(const std::string& name);

 private:
  explicit Catalog(storage::Engine* engine) : engine_(engine) {}
  Status Persist(const CollectionInfo& info, storage::WriteBatch* batch);

  storage::Engine* const engine_;
  mutable std::shared_mutex mu_;
  std::map<std::string, CollectionInfo> by_name_;  // GUARDED_BY(mu_)
  uint32_t next_id_ = 1;                           // GUARDED_BY(mu_)
};

inline constexpr uint32_t kDefaultTenant = 1;
inline constexpr const char* kDefaultCollection = "default";

}  // namespace gojodb::kv
