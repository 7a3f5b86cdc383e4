// Queries over documents: the JSON filter language, its evaluation against a document,
// and the planner that picks an index (or a collection scan) for a filter, with
// `explain`. See docs/architecture/documents.md, "Queries". Pure functions.
#pragma once

#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "core/document/document.h"
#include "internal/status.h"

namespace gojodb::query {

// A parsed filter: a tree of and/or/not over comparisons of one field each.
struct Filter {
  enum class Kind { kAnd, kOr, kNot, kCompare };
  enum class Op { kEq, kNe, kLt, kLte, kGt, kGte, kIn, kExists, kPrefix };
  Kind kind = Kind::kAnd;
  std::vector<Filter> children;  // and, or: any number; not: exactly one
  // kCompare:
  document::Path path;
  Op op = Op::kEq;
  std::shared_ptr<const nlohmann::json> operand;  // kIn: an array; kExists: a boolean
};
std::string_view OpName(Filter::Op op);

inline constexpr int kMaxFilterDepth = 32;
inline constexpr size_t kMaxInValues = 1000;

// Parses a filter (the "filter" member of a query; null or {} matches everything).
// `schema` (may be null) refuses paths it does not name when it allows no other fields,
// and range operands of a type it rules out for the field. INVALID_ARGUMENT naming the
// first problem and where it is.
Result<Filter> ParseFilter(const nlohmann::json& filter, const document::Schema* schema = nullptr);

// A request member sent as JSON text (a filter, group_by, aggregates): empty is null;
// text that is not JSON is INVALID_ARGUMENT "<what> is not valid JSON".
Result<nlohmann::json> ParseJsonText(const std::string& text, const char* what);

// Whether `doc` matches. Comparisons (lt, lte, gt, gte) hold only between values of the
// same kind (numbers with numbers, strings with strings, booleans with booleans); eq and
// ne compare values of any type (ne also holds for a missing field); in is eq against any
// listed value; prefix holds for strings that start with the operand.
bool Matches(const Filter& f, const nlohmann::json& doc);

// --- Planning ---
// A key range of an index's entries, [start, end) in entry keys ("" end: to the end).
struct KeyRange {
  std::string start;
  std::string end;
  bool operator==(const KeyRange&) const = default;
};
struct Plan {
  enum class Kind { kCollectionScan, kIndexScan };
  Kind kind = Kind::kCollectionScan;
  const document::IndexSpec* index = nullptr;  // kIndexScan: one of the planner's indexes
  std::vector<KeyRange> ranges;                // sorted, disjoint
  size_t fixed_fields = 0;                     // index fields fixed by eq/in
  bool has_range = false;                      // the next field bounded by a range
  // The walk of the entries in key order meets the matches in the order of the query's
  // sort (see ChoosePlan): each entry's sort values are at or after those of every entry
  // before it, so a page is complete before the walk ends.
  bool ordered = false;
  // Ordered ascending, and the sort reaches the index's last field: among equal sort
  // values the walk goes in document key order too (a non-unique entry ends with its document's
  // key; a unique one has no equal), so it meets the matches in the page's exact order.
  bool exactly_ordered = false;
  // Ordered by a descending sort: the walk goes from the range's end backward.
  bool descending = false;
  // {"plan": "index_scan", "index": NAME, "fields": [...], "fixed_fields": N,
  //  "range": bool, "ordered": bool, "reverse": bool, "ranges": R} or
  //  {"plan": "collection_scan"}.
  nlohmann::json Explain() const;
};
inline constexpr size_t kMaxPlanRanges = 16;
// The best plan for `f` given the collection's ready indexes (see the design page for the
// scoring). The filter is always checked on each document as well.
Plan ChoosePlan(const Filter& f, const std::vector<document::IndexSpec>& indexes);
// The same, for a query sorted by `sort` (empty: no sort an index can serve), every path
// ascending, or every path `descending`. An index scan of one range is `ordered` when
// the sort's paths are index fields from a position at or before the end of the fixed
// prefix on, at least one of them past it; of two plans that fix as much, an ordered one
// wins. Where no index narrows the filter, the plan is an ordered walk of the whole of
// the tightest non-unique index (which holds every document) whose first fields are the
// sort's paths. A descending plan walks its range from the end backward.
Plan ChoosePlan(const Filter& f, const std::vector<document::IndexSpec>& indexes,
                const std::vector<document::Path>& sort, bool descending = false);
// The part of an ordered plan's range left to walk for the page after a cursor whose sort
// values (document::EncodeValue of each sort path) are `after`: from the first entry with
// those values on (descending: up to the last one). The entries cut off sort before the
// cursor. The range as it is for a plan that is not ordered, or on damage.
KeyRange OrderedRange(const Plan& plan, const std::vector<document::Path>& sort,
                      const std::vector<std::string>& after);

}  // namespace gojodb::query
