// Aggregation over documents: group-by with count, sum, avg, min, max and
// count_distinct. Partial results are mergeable, so each shard can compute its part and
// the router merge them (docs/architecture/documents.md, "Aggregation"). Pure.
#pragma once

#include <map>
#include <nlohmann/json_fwd.hpp>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/document/document.h"
#include "internal/status.h"

namespace gojodb::query {

struct AggregateSpec {
  enum class Fn { kCount, kSum, kAvg, kMin, kMax, kCountDistinct };
  std::string name;  // the output name
  Fn fn = Fn::kCount;
  bool star = false;    // count: "*" counts documents
  document::Path path;  // otherwise the field
};

struct AggregateQuery {
  std::vector<document::Path> group_by;
  std::vector<AggregateSpec> aggregates;
};

inline constexpr size_t kMaxGroups = 100000;
inline constexpr size_t kMaxAggregates = 64;

// Parses {"group_by": [paths], "aggregates": {"name": {"count": "*"|path}, …}} from the
// request's members. INVALID_ARGUMENT naming the place.
Result<AggregateQuery> ParseAggregate(const nlohmann::json& group_by,
                                      const nlohmann::json& aggregates);

// One aggregate's running state for one group. Mergeable.
struct AggState {
  uint64_t count = 0;    // count: documents (or present values); sum/avg: numbers seen
  double sum = 0;        // sum, avg
  std::string min, max;  // encoded values (document::EncodeValue); empty: none yet
  std::set<std::string> distinct;
};

// Groups by their encoded key (the concatenated encodings of the group_by values).
class Aggregator {
 public:
  // `q` must outlive the aggregator.
  explicit Aggregator(const AggregateQuery& q) : q_(q) {}
  // Adds a document. INVALID_ARGUMENT (reason TOO_MANY_GROUPS) past kMaxGroups groups.
  Status Add(const nlohmann::json& doc);
  // Adds another aggregator's groups (a shard's partial result).
  Status Merge(const Aggregator& other);
  // The groups and their states as bytes, for another aggregator of the same query to
  // merge (a shard's partial result sent to the router).
  std::string EncodePartial() const;
  // Merges what EncodePartial of an aggregator of the same query wrote. INVALID_ARGUMENT
  // on bytes it did not write (or of another query's shape); the groups merged before
  // the fault stay.
  Status MergePartial(std::string_view bytes);
  // {"groups":[{"key":{path: value…},"values":{name: value…}}]} in key order.
  nlohmann::json Output() const;
  size_t groups() const { return groups_.size(); }

 private:
  struct Group {
    std::vector<std::string> key_values;  // encoded, one per group_by path
    std::vector<AggState> states;
  };
  Status CheckSize() const;
  Status MergeGroup(const std::string& key, Group g);
  const AggregateQuery& q_;
  std::map<std::string, Group> groups_;
};

}  // namespace gojodb::query
