#include "core/kv/catalog.h"

#include <mutex>
#include <nlohmann/json.hpp>

#include "core/mvcc/key_codec.h"
#include "core/mvcc/mvcc.h"
#include "internal/names.h"

namespace gojodb::kv {
namespace {

using nlohmann::json;
constexpr auto kMeta = storage::ColumnFamily::kMeta;
const std::string kCollectionPrefix =
    "\x02"
    "collection/";
const std::string kNextIdKey =
    "\x02"
    "next_collection_id";

std::string ToJson(const CollectionInfo& c) {
  json idx = json::array();
  for (const auto& i : c.indexes)
    idx.push_back({{"name", i.name}, {"fields", i.fields}, {"unique", i.unique}});
  return json{{"name", c.name},
              {"id", c.id},
              {"created_at", c.created_at},
              {"schema", c.schema_json},
              {"indexes", idx}}
      .dump();
}

Result<CollectionInfo> FromJson(std::string_view text) {
  auto j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Status::Corruption("catalog entry is not JSON");
  try {
    CollectionInfo c;
    c.name = j.at("name").get<std::string>();
    c.id = j.at("id").get<uint32_t>();
    c.created_at = j.at("created_at").get<uint64_t>();
    c.schema_json = j.at("schema").get<std::string>();
    for (const auto& i : j.at("indexes")) {
      c.indexes.push_back({i.at("name").get<std::string>(),
                           i.at("fields").get<std::vector<std::string>>(),
                           i.at("unique").get<bool>()});
    }
    return c;
  } catch (const json::exception& e) {
    return Status::Corruption(std::string("catalog entry: ") + e.what());
  }
}

}  // namespace

Status Catalog::ValidateName(const std::string& name) {
  return gojodb::ValidateName("collection", name);
}

Result<std::unique_ptr<Catalog>> Catalog::Open(storage::Engine* engine, uint64_t now_ts) {
  std::unique_ptr<Catalog> cat(new Catalog(engine));
  storage::ReadOptions ro;
  ro.lower_bound = kCollectionPrefix;
  ro.upper_bound = mvcc::PrefixSuccessor(kCollectionPrefix);
  auto it = engine->NewIterator(ro, kMeta);
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    ASSIGN_OR_RETURN(auto info, FromJson(it->value()));
    cat->next_id_ = std::max(cat->next_id_, info.id + 1);
    cat->by_name_[info.name] = std::move(info);
  }
  RETURN_IF_ERROR(it->status());
  ASSIGN_OR_RETURN(auto next, engine->Get({}, kMeta, kNextIdKey));
  if (next && next->size() == 4) cat->next_id_ = std::max(cat->next_id_, mvcc::ReadUint32(*next));
  if (!cat->Find(kDefaultCollection)) {
    auto created = cat->Create({.name = kDefaultCollection}, now_ts);
    if (!created.ok()) return created.status();
  }
  return cat;
}

std::optional<CollectionInfo> Catalog::Find(const std::string& name) const {
  std::shared_lock lock(mu_);
  auto it = by_name_.find(name);
  if (it == by_name_.end()) return std::nullopt;
  return it->second;
}

std::vector<CollectionInfo> Catalog::List() const {
  std::shared_lock lock(mu_);
  std::vector<CollectionInfo> out;
  for (const auto& [name, info] : by_name_) out.push_back(info);
  return out;
}

Result<CollectionInfo> Catalog::Create(const CollectionSpec& spec, uint64_t created_at) {
  RETURN_IF_ERROR(ValidateName(spec.name));
  std::unique_lock lock(mu_);
  if (by_name_.count(spec.name)) {
    return Status::AlreadyExists("collection '" + spec.name + "' already exists");
  }
  CollectionInfo info{spec.name, next_id_, created_at, spec.schema_json, spec.indexes};
  storage::WriteBatch b;
  b.Put(kMeta, kCollectionPrefix + info.name, ToJson(info));
  std::string next;
  mvcc::AppendUint32(&next, info.id + 1);
  b.Put(kMeta, kNextIdKey, next);
  RETURN_IF_ERROR(engine_->Write({.sync = true}, b));
  ++next_id_;
  by_name_[info.name] = info;
  return info;
}

Status Catalog::Drop(const std::string& name) {
  std::unique_lock lock(mu_);
  auto it = by_name_.find(name);
  if (it == by_name_.end()) return Status::NotFound("collection '" + name + "' does not exist");
  const std::string prefix = mvcc::CollectionPrefix(kDefaultTenant, it->second.id);
  storage::WriteBatch b;
  b.Delete(kMeta, kCollectionPrefix + name);
  b.DeleteRange(mvcc::kVersionCf, prefix, mvcc::PrefixSuccessor(prefix));
  RETURN_IF_ERROR(engine_->Write({.sync = true}, b));
  by_name_.erase(it);
  return Status::OK();
}

}  // namespace gojodb::kv
