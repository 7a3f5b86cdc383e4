// Document rules shared by the router's document writes (cluster_docs.cc) and bulk
// ingest (cluster_ingest.cc): a collection's schema and indexes, and the index-entry
// mutations that move a document from one version to the next.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/document/document.h"
#include "core/kv/kv_service.h"
#include "core/txn/percolator.h"
#include "internal/status.h"

namespace gojodb::gateway {

struct DocRules {
  std::optional<document::Schema> schema;
  // The indexes writers keep (building, public and dropping ones).
  std::vector<document::IndexSpec> indexes;
  // Indexes whose entries writers delete but do not add (delete_only ones).
  std::vector<document::IndexSpec> delete_only;
  // For each of them, the least read timestamp a query may use it at (public ones);
  // UINT64_MAX for the others.
  std::vector<uint64_t> usable_from;

  // The top-level fields the indexes (both kinds) read, sorted: without a schema, a
  // write needs only these members of a document built (ParseForWrite).
  std::vector<std::string> index_fields;

  // The indexes a query at read_ts may use.
  std::vector<document::IndexSpec> QueryableAt(uint64_t read_ts) const;
  // `bytes` as a document, built whole when there is a schema to check, else only the
  // members the indexes read; the same verdict either way.
  Result<nlohmann::json> ParseForWrite(std::string_view bytes) const;
};

// The lesser of two schema lease ends, where 0 means none.
inline uint64_t LeastLease(uint64_t a, uint64_t b) {
  if (a == 0) return b;
  if (b == 0) return a;
  return a < b ? a : b;
}

// Whether writes to the collection are documents with rules to keep: a schema, or an
// index that writers keep (any but a failed build's). A plain collection that gains an
// index holds documents from then on.
inline bool HasRules(const kv::CollectionInfo& info) {
  if (!info.schema_json.empty()) return true;
  for (const auto& i : info.indexes) {
    if (i.state != kv::kIndexFailed) return true;
  }
  return false;
}

// The collection's schema and indexes, parsed.
Result<DocRules> RulesOf(const kv::CollectionInfo& info);

// A put of a unique index's entry: valid only while no other document holds the entry.
struct UniqueClaim {
  const document::IndexSpec* index = nullptr;
  std::string entry_key;  // the entry's key in the index
  size_t mutation = 0;    // its put among the mutations
};

// Appends the mutations that move `key`'s index entries from those of old_doc to those
// of doc (either null: absent), and the deletes of old_doc's entries in delete-only
// indexes. Unique puts carry if_version 0 and are listed in claims.
void AppendEntryMutations(const DocRules& rules, const std::string& key,
                          const nlohmann::json* old_doc, const nlohmann::json* doc,
                          std::vector<txn::TxnMutation>* mutations,
                          std::vector<UniqueClaim>* claims);

// Whether a document transaction that failed with `s` should read again and retry:
// another write overtook it (WRITE_CONFLICT, a failed condition), or the GC passed its
// start (TOO_OLD, OUT_OF_RANGE).
bool ShouldRereadAndRetry(const Status& s);

// 409 reason=UNIQUE: `holder` ("document 'k'") has the values a write gave a unique index.
Status UniqueViolation(const document::IndexSpec& index, const std::string& holder);

// Refuses a document whose index entry would exceed the key limit (400 reason
// INDEX_KEY_TOO_LARGE), then checks it against the schema.
Status CheckDocument(const DocRules& rules, const std::string& key, const nlohmann::json& doc,
                     size_t max_key_bytes);

}  // namespace gojodb::gateway
