#include "core/query/query.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>

#include "core/mvcc/key_codec.h"

namespace gojodb::query {

using json = nlohmann::json;
using document::Path;

std::string_view OpName(Filter::Op op) {
  switch (op) {
    case Filter::Op::kEq:
      return "eq";
    case Filter::Op::kNe:
      return "ne";
    case Filter::Op::kLt:
      return "lt";
    case Filter::Op::kLte:
      return "lte";
    case Filter::Op::kGt:
      return "gt";
    case Filter::Op::kGte:
      return "gte";
    case Filter::Op::kIn:
      return "in";
    case Filter::Op::kExists:
      return "exists";
    case Filter::Op::kPrefix:
      return "prefix";
  }
  return "?";
}

namespace {

constexpr Filter::Op kOps[] = {Filter::Op::kEq,  Filter::Op::kNe,     Filter::Op::kLt,
                               Filter::Op::kLte, Filter::Op::kGt,     Filter::Op::kGte,
                               Filter::Op::kIn,  Filter::Op::kExists, Filter::Op::kPrefix};

bool IsRange(Filter::Op op) {
  return op == Filter::Op::kLt || op == Filter::Op::kLte || op == Filter::Op::kGt ||
         op == Filter::Op::kGte;
}

// The schema type a range operand needs the field to allow.
bool SchemaAllows(const std::vector<std::string>& types, const json& operand) {
  if (types.empty()) return true;
  for (const auto& t : types) {
    if (operand.is_number() && (t == "number" || t == "integer")) return true;
    if (operand.is_string() && t == "string") return true;
    if (operand.is_boolean() && t == "boolean") return true;
  }
  return false;
}

class Parser {
 public:
  explicit Parser(const document::Schema* schema) : schema_(schema) {}

  Result<Filter> Parse(const json& j, const std::string& where, int depth) {
    if (depth > kMaxFilterDepth) {
      return Status::InvalidArgument(where + ": filters nest at most " +
                                     std::to_string(kMaxFilterDepth) + " levels deep");
    }
    if (!j.is_object()) return Status::InvalidArgument(where + ": a filter must be an object");
    Filter out;
    out.kind = Filter::Kind::kAnd;
    for (const auto& [key, value] : j.items()) {
      const std::string here = where + "." + key;
      if (key == "and" || key == "or") {
        if (!value.is_array())
          return Status::InvalidArgument(here + ": must be an array of filters");
        Filter group;
        group.kind = key == "and" ? Filter::Kind::kAnd : Filter::Kind::kOr;
        for (size_t i = 0; i < value.size(); ++i) {
          ASSIGN_OR_RETURN(auto child,
                           Parse(value[i], here + "[" + std::to_string(i) + "]", depth + 1));
          group.children.push_back(std::move(child));
        }
        out.children.push_back(std::move(group));
      } else if (key == "not") {
        Filter n;
        n.kind = Filter::Kind::kNot;
        ASSIGN_OR_RETURN(auto child, Parse(value, here, depth + 1));
        n.children.push_back(std::move(child));
        out.children.push_back(std::move(n));
      } else {
        RETURN_IF_ERROR(Field(key, value, here, &out));
      }
    }
    return out;
  }

 private:
  Status Field(const std::string& name, const json& spec, const std::string& where, Filter* out) {
    auto parsed = document::ParsePath(name);
    if (!parsed.ok()) return Status::InvalidArgument(where + ": " + parsed.status().message());
    const Path path = std::move(*parsed);
    if (schema_ && !schema_->additional_fields() && !schema_->Names(path)) {
      return Status::InvalidArgument(where + ": the collection's schema has no field '" + name +
                                     "'");
    }
    // {"f": value} is {"f": {"eq": value}}; an object whose keys are all operators is
    // a set of operators.
    bool operators = spec.is_object() && !spec.empty();
    if (operators) {
      for (const auto& [k, v] : spec.items()) operators = operators && FindOp(k).has_value();
    }
    if (!operators) {
      if (spec.is_object() && !spec.empty()) {
        for (const auto& [k, v] : spec.items()) {
          if (!FindOp(k)) {
            return Status::InvalidArgument(
                where + ": unknown operator '" + k +
                "' (eq, ne, lt, lte, gt, gte, in, exists, prefix); to compare with an "
                "object, write {\"eq\": {...}}");
          }
        }
      }
      out->children.push_back(Compare(path, Filter::Op::kEq, spec));
      return Status::OK();
    }
    for (const auto& [k, v] : spec.items()) {
      const Filter::Op op = *FindOp(k);
      const std::string here = where + "." + k;
      if (op == Filter::Op::kIn) {
        if (!v.is_array()) return Status::InvalidArgument(here + ": 'in' takes an array");
        if (v.size() > kMaxInValues) {
          return Status::InvalidArgument(here + ": 'in' takes at most " +
                                         std::to_string(kMaxInValues) + " values");
        }
      } else if (op == Filter::Op::kExists) {
        if (!v.is_boolean())
          return Status::InvalidArgument(here + ": 'exists' takes true or false");
      } else if (op == Filter::Op::kPrefix) {
        if (!v.is_string()) return Status::InvalidArgument(here + ": 'prefix' takes a string");
      } else if (IsRange(op)) {
        if (!v.is_number() && !v.is_string() && !v.is_boolean()) {
          return Status::InvalidArgument(here + ": '" + k +
                                         "' takes a number, a string or a boolean");
        }
        if (schema_ && !SchemaAllows(schema_->TypesOf(path), v)) {
          return Status::InvalidArgument(here + ": field '" + name +
                                         "' cannot hold a value comparable with " + v.dump() +
                                         " under the collection's schema");
        }
      }
      out->children.push_back(Compare(path, op, v));
    }
    return Status::OK();
  }

  static std::optional<Filter::Op> FindOp(const std::string& name) {
    for (auto op : kOps) {
      if (OpName(op) == name) return op;
    }
    return std::nullopt;
  }

  static Filter Compare(const Path& path, Filter::Op op, const json& operand) {
    Filter f;
    f.kind = Filter::Kind::kCompare;
    f.path = path;
    f.op = op;
    f.operand = std::make_shared<const json>(operand);
    return f;
  }

  const document::Schema* schema_;
};

// Same kind for range comparisons: numbers, strings, booleans.
bool Comparable(const json& a, const json& b) {
  return (a.is_number() && b.is_number()) || (a.is_string() && b.is_string()) ||
         (a.is_boolean() && b.is_boolean());
}

bool CompareMatches(const Filter& f, const json& doc) {
  const json* v = document::Lookup(doc, f.path);
  const json& operand = *f.operand;
  switch (f.op) {
    case Filter::Op::kEq:
      return v != nullptr && document::CompareValues(v, &operand) == 0;
    case Filter::Op::kNe:
      return v == nullptr || document::CompareValues(v, &operand) != 0;
    case Filter::Op::kIn:
      if (v == nullptr) return false;
      for (const auto& o : operand) {
        if (document::CompareValues(v, &o) == 0) return true;
      }
      return false;
    case Filter::Op::kExists:
      return (v != nullptr) == operand.get<bool>();
    case Filter::Op::kPrefix: {
      if (v == nullptr || !v->is_string()) return false;
      const auto& s = v->get_ref<const std::string&>();
      const auto& p = operand.get_ref<const std::string&>();
      return s.compare(0, p.size(), p) == 0;
    }
    default: {
      if (v == nullptr || !Comparable(*v, operand)) return false;
      const int c = document::CompareValues(v, &operand);
      switch (f.op) {
        case Filter::Op::kLt:
          return c < 0;
        case Filter::Op::kLte:
          return c <= 0;
        case Filter::Op::kGt:
          return c > 0;
        default:
          return c >= 0;
      }
    }
  }
}

}  // namespace

Result<json> ParseJsonText(const std::string& text, const char* what) {
  if (text.empty()) return json(nullptr);
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded()) return Status::InvalidArgument(std::string(what) + " is not valid JSON");
  return j;
}

Result<Filter> ParseFilter(const json& filter, const document::Schema* schema) {
  if (filter.is_null()) return Filter{};
  return Parser(schema).Parse(filter, "filter", 0);
}

bool Matches(const Filter& f, const json& doc) {
  switch (f.kind) {
    case Filter::Kind::kAnd:
      for (const auto& c : f.children) {
        if (!Matches(c, doc)) return false;
      }
      return true;
    case Filter::Kind::kOr:
      for (const auto& c : f.children) {
        if (Matches(c, doc)) return true;
      }
      return false;
    case Filter::Kind::kNot:
      return !Matches(f.children.at(0), doc);
    case Filter::Kind::kCompare:
      return CompareMatches(f, doc);
  }
  return false;
}

// --- Planning ---

namespace {

// The conjuncts of `f` at the top: nested ands flattened.
void Conjuncts(const Filter& f, std::vector<const Filter*>* out) {
  if (f.kind == Filter::Kind::kAnd) {
    for (const auto& c : f.children) Conjuncts(c, out);
  } else {
    out->push_back(&f);
  }
}

// What the conjuncts say about one field: the values it must equal (eq, or in), and a
// range within one type.
struct FieldBounds {
  std::vector<std::string> equal;  // encoded values; empty: not fixed
  bool fixed = false;
  bool impossible = false;  // contradicting eqs: no document matches
  // Range on encoded values: [lower, upper) in encoded space.
  std::optional<std::string> lower;  // inclusive
  std::optional<std::string> upper;  // exclusive
};

std::string Successor(const std::string& encoded) { return mvcc::PrefixSuccessor(encoded); }

// `unique`: the index skips documents whose field is missing or null, so `exists` cannot
// be answered from it.
FieldBounds BoundsFor(const Path& path, const std::vector<const Filter*>& conj, bool unique) {
  FieldBounds b;
  for (const Filter* c : conj) {
    if (c->kind != Filter::Kind::kCompare || !(c->path == path)) continue;
    const json& o = *c->operand;
    if (c->op == Filter::Op::kExists && !unique) {
      if (!o.get<bool>()) {
        // Missing is a value of its own in a non-unique index: fix the field to it.
        const std::string missing = document::EncodeValue(nullptr);
        if (!b.fixed) {
          b.equal = {missing};
          b.fixed = true;
        } else if (std::find(b.equal.begin(), b.equal.end(), missing) == b.equal.end()) {
          b.equal.clear();
        } else {
          b.equal = {missing};
        }
        if (b.equal.empty()) b.impossible = true;
      } else {
        // Present: any tag after missing.
        const std::string lo(1, char(document::TypeTag::kNull));
        if (!b.lower || lo > *b.lower) b.lower = lo;
        if (!b.upper) b.upper = std::string(1, char(uint8_t(document::TypeTag::kComposite) + 1));
      }
      continue;
    }
    if (c->op == Filter::Op::kEq || c->op == Filter::Op::kIn) {
      std::vector<std::string> values;
      if (c->op == Filter::Op::kEq) {
        values.push_back(document::EncodeValue(&o));
      } else {
        for (const auto& v : o) values.push_back(document::EncodeValue(&v));
      }
      std::sort(values.begin(), values.end());
      values.erase(std::unique(values.begin(), values.end()), values.end());
      if (!b.fixed) {
        b.equal = std::move(values);
        b.fixed = true;
      } else {
        std::vector<std::string> both;
        std::set_intersection(b.equal.begin(), b.equal.end(), values.begin(), values.end(),
                              std::back_inserter(both));
        b.equal = std::move(both);
      }
      if (b.equal.empty()) b.impossible = true;
    } else if (IsRange(c->op) || c->op == Filter::Op::kPrefix) {
      std::string lo, hi;
      if (c->op == Filter::Op::kPrefix) {
        lo = document::EncodeStringPrefix(o.get_ref<const std::string&>());
        hi = Successor(lo);
      } else {
        // Within the operand's type: numbers, strings, or booleans (false, true).
        const std::string enc = document::EncodeValue(&o);
        const char tag = enc[0];
        const bool boolean = o.is_boolean();
        const std::string type_lo(1, boolean ? char(document::TypeTag::kFalse) : tag);
        const std::string type_hi(
            1, boolean ? char(uint8_t(document::TypeTag::kTrue) + 1) : char(uint8_t(tag) + 1));
        switch (c->op) {
          case Filter::Op::kGt:
            lo = Successor(enc), hi = type_hi;
            break;
          case Filter::Op::kGte:
            lo = enc, hi = type_hi;
            break;
          case Filter::Op::kLt:
            lo = type_lo, hi = enc;
            break;
          default:  // lte
            lo = type_lo, hi = Successor(enc);
            break;
        }
      }
      if (!b.lower || lo > *b.lower) b.lower = lo;
      if (!b.upper || hi < *b.upper) b.upper = hi;
    }
  }
  return b;
}

struct Candidate {
  Plan plan;
  bool unique_point = false;
};

bool Better(const Candidate& a, const Candidate& b) {
  if (a.unique_point != b.unique_point) return a.unique_point;
  if (a.plan.fixed_fields != b.plan.fixed_fields) return a.plan.fixed_fields > b.plan.fixed_fields;
  if (a.plan.has_range != b.plan.has_range) return a.plan.has_range;
  if (a.plan.ordered != b.plan.ordered) return a.plan.ordered;
  return a.plan.index->fields.size() < b.plan.index->fields.size();
}

// The j <= fixed with sort = fields[j, j + sort.size()) and j + sort.size() > fixed: the
// sort's first path is index field j. nullopt when there is none.
std::optional<size_t> SortStartsAt(const std::vector<document::Path>& sort,
                                   const std::vector<document::Path>& fields, size_t fixed) {
  for (size_t j = 0; j <= fixed && j + sort.size() <= fields.size(); ++j) {
    if (j + sort.size() <= fixed) continue;  // only fixed fields: the walk is not by them
    if (std::equal(sort.begin(), sort.end(), fields.begin() + static_cast<std::ptrdiff_t>(j))) {
      return j;
    }
  }
  return std::nullopt;
}

}  // namespace

Plan ChoosePlan(const Filter& f, const std::vector<document::IndexSpec>& indexes) {
  return ChoosePlan(f, indexes, {});
}

Plan ChoosePlan(const Filter& f, const std::vector<document::IndexSpec>& indexes,
                const std::vector<document::Path>& sort, bool descending) {
  std::vector<const Filter*> conj;
  Conjuncts(f, &conj);
  std::optional<Candidate> best;
  for (const auto& index : indexes) {
    Candidate c;
    c.plan.kind = Plan::Kind::kIndexScan;
    c.plan.index = &index;
    std::vector<std::string> prefixes = {""};
    bool impossible = false;
    size_t i = 0;
    for (; i < index.fields.size(); ++i) {
      FieldBounds b = BoundsFor(index.fields[i], conj, index.unique);
      if (b.impossible) impossible = true;
      if (index.unique && !impossible) {
        // A unique index has no entry for a document with a null field: it cannot
        // answer an equality with null.
        for (const auto& v : b.equal) {
          if (v[0] == char(document::TypeTag::kNull)) b.fixed = false;
        }
      }
      if (!b.fixed || impossible) {
        if (!impossible && (b.lower || b.upper)) {
          // One range on the next field, after the fixed prefix.
          c.plan.has_range = true;
          for (const auto& p : prefixes) {
            std::string lo = p + b.lower.value_or(std::string());
            std::string hi = b.upper ? p + *b.upper : mvcc::PrefixSuccessor(p);
            if (b.upper && hi.empty()) hi = mvcc::PrefixSuccessor(p);
            if (lo < hi || hi.empty()) c.plan.ranges.push_back({lo, hi});
          }
        }
        break;
      }
      if (prefixes.size() * b.equal.size() > kMaxPlanRanges) break;
      std::vector<std::string> next;
      for (const auto& p : prefixes) {
        for (const auto& v : b.equal) next.push_back(p + v);
      }
      prefixes = std::move(next);
      c.plan.fixed_fields = i + 1;
    }
    if (impossible) {
      c.plan.ranges.clear();  // nothing matches: an empty scan
      c.plan.fixed_fields = index.fields.size();
      c.unique_point = true;
    } else if (!c.plan.has_range) {
      if (c.plan.fixed_fields == 0) continue;  // the index does not help
      for (const auto& p : prefixes) c.plan.ranges.push_back({p, mvcc::PrefixSuccessor(p)});
      c.unique_point = index.unique && c.plan.fixed_fields == index.fields.size();
    }
    // A unique index skips documents with a missing or null field: usable only when
    // every one of its fields is bound to non-null values.
    if (index.unique && !impossible &&
        c.plan.fixed_fields + (c.plan.has_range ? 1 : 0) < index.fields.size()) {
      continue;
    }
    std::sort(c.plan.ranges.begin(), c.plan.ranges.end(),
              [](const KeyRange& a, const KeyRange& b) { return a.start < b.start; });
    // Several ranges (an `in` on a fixed field) each come in order, but not together.
    if (!sort.empty() && c.plan.ranges.size() <= 1) {
      const auto j = SortStartsAt(sort, index.fields, c.plan.fixed_fields);
      c.plan.ordered = j.has_value();
      c.plan.descending = c.plan.ordered && descending;
      // Backward, equal values come by document key backward: not the page's order.
      c.plan.exactly_ordered = !descending && j && *j + sort.size() == index.fields.size();
    }
    if (!best || Better(c, *best)) best = std::move(c);
  }
  if (best) return best->plan;
  if (sort.empty()) return Plan{};
  // No index narrows the filter: walk the tightest non-unique index (it holds every
  // document) whose first fields are the sort's paths, in its order.
  const document::IndexSpec* walk = nullptr;
  for (const auto& index : indexes) {
    if (index.unique || !SortStartsAt(sort, index.fields, 0)) continue;
    if (!walk || index.fields.size() < walk->fields.size()) walk = &index;
  }
  if (!walk) return Plan{};
  Plan ordered;
  ordered.kind = Plan::Kind::kIndexScan;
  ordered.index = walk;
  ordered.ranges = {{"", ""}};
  ordered.ordered = true;
  ordered.descending = descending;
  ordered.exactly_ordered = !descending && sort.size() == walk->fields.size();
  return ordered;
}

KeyRange OrderedRange(const Plan& plan, const std::vector<document::Path>& sort,
                      const std::vector<std::string>& after) {
  if (plan.ranges.size() != 1) return {};
  KeyRange r = plan.ranges[0];
  if (!plan.ordered || after.size() != sort.size()) return r;
  const auto j = SortStartsAt(sort, plan.index->fields, plan.fixed_fields);
  if (!j) return r;
  // The fixed fields' values begin every entry of the range, then the sort's values
  // past them.
  auto fixed = document::ValuesLength(r.start, plan.fixed_fields);
  if (!fixed.ok()) return r;
  std::string at = r.start.substr(0, *fixed);
  for (size_t i = plan.fixed_fields - *j; i < after.size(); ++i) at += after[i];
  if (!plan.descending) {
    r.start = std::max(r.start, at);
    return r;
  }
  // Every entry with those values begins with them.
  std::string past = mvcc::PrefixSuccessor(at);
  if (!past.empty() && (r.end.empty() || past < r.end)) r.end = std::move(past);
  return r;
}

json Plan::Explain() const {
  if (kind == Kind::kCollectionScan) return {{"plan", "collection_scan"}};
  auto hex = [](const std::string& bytes) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out;
    for (unsigned char c : bytes) {
      out.push_back(kDigits[c >> 4]);
      out.push_back(kDigits[c & 15]);
    }
    return out;
  };
  json fields = json::array();
  for (const auto& p : index->fields) fields.push_back(p.text);
  json spans = json::array();
  for (const auto& r : ranges) spans.push_back({{"start", hex(r.start)}, {"end", hex(r.end)}});
  return {{"plan", "index_scan"},         {"index", index->name}, {"fields", fields},
          {"fixed_fields", fixed_fields}, {"range", has_range},   {"ordered", ordered},
          {"reverse", descending},        {"ranges", spans}};
}

}  // namespace gojodb::query
