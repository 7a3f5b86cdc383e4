// A query's work on one shard (docs/architecture/documents.md, "Pushed to the shards"):
// the router sends the filter, projection, sort fields and limit, or an aggregation, with
// a key range; the shard's rows go through a ShardQueryRun, which keeps the matching
// documents (projected, with their sort values) or folds them into a partial aggregate.
// Only the matches, or the partial, go back to the router. Pure.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/query/aggregate.h"
#include "core/query/query.h"

namespace gojodb::query {

// The document with only `paths` (each where it was); every path when `paths` is empty.
nlohmann::json Project(const nlohmann::json& doc, const std::vector<document::Path>& paths);

struct ShardQuery {
  Filter filter;
  std::vector<document::Path> projection;   // empty: whole documents
  std::vector<document::Path> sort;         // each match carries these values, encoded
  std::optional<AggregateQuery> aggregate;  // set: a partial aggregate instead of matches
  size_t limit = 0;                         // matches to keep at most (not aggregating)
  size_t max_bytes = 0;                     // of kept matches; the last one may pass it
  // The top-level fields the filter, sort, projection and aggregation name (sorted):
  // the only ones parsed out of each document.
  std::vector<std::string> fields;
};

// Parses what the router sent. The filter was checked against the schema at the router;
// here it is parsed without one. INVALID_ARGUMENT naming the part.
struct ShardQueryText {
  std::string filter_json;  // empty: every document
  std::vector<std::string> projection, sort;
  std::string group_by_json, aggregates_json;  // aggregates_json set: aggregate
  size_t limit = 0;
  size_t max_bytes = 0;
};
Result<std::unique_ptr<ShardQuery>> ParseShardQuery(const ShardQueryText& text);

class ShardQueryRun {
 public:
  struct Match {
    std::string key;
    std::string value;  // the document, or its projection
    uint64_t version = 0;
    std::vector<std::string> sort_values;  // document::EncodeValue of each sort path
  };
  // `q` must outlive the run.
  explicit ShardQueryRun(const ShardQuery& q);
  // One row of the range. Rows that are not JSON objects match nothing. Returns false
  // once the run has enough (the limit of matches, or their bytes): the rest of the
  // range is for a later call. Errors: the aggregate's (TOO_MANY_GROUPS).
  Result<bool> Add(std::string_view key, std::string_view value, uint64_t version);

  uint64_t examined() const { return examined_; }
  uint64_t matched() const { return matched_; }
  std::vector<Match>& matches() { return matches_; }
  std::string EncodePartial() const { return agg_ ? agg_->EncodePartial() : std::string(); }
  // Adds another aggregating run's counts and groups (a run of the same query over other
  // rows). INVALID_ARGUMENT when either does not aggregate, or past the group limit.
  Status Absorb(const ShardQueryRun& other);

 private:
  const ShardQuery& q_;
  std::optional<Aggregator> agg_;
  std::vector<Match> matches_;
  size_t bytes_ = 0;
  uint64_t examined_ = 0, matched_ = 0;
};

}  // namespace gojodb::query
