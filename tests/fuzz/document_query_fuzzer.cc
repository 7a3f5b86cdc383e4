// Fuzzes what clients send about documents: a filter (parsed, evaluated against fixed
// documents and planned over fixed indexes, with explain), a schema (parsed and checked
// against the input as a document), a document (its index entries decode back to its
// key), a shard's partial aggregate (merged, then written again and merged into an
// empty aggregator to the same output), and a stored value's JSON check (IsJsonText as
// json::accept). Nothing may crash, and an index plan never misses a matching document.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

#include "core/document/document.h"
#include "core/query/aggregate.h"
#include "core/query/query.h"

using namespace gojodb;
using json = nlohmann::json;

namespace {
document::Path P(const char* t) { return document::ParsePath(t).value(); }

const std::vector<document::IndexSpec>& Indexes() {
  static const std::vector<document::IndexSpec> indexes = {
      {"a", 1, {P("a")}, false},
      {"ab", 2, {P("a"), P("b.c")}, false},
      {"u", 3, {P("u")}, true},
      {"ub", 4, {P("u"), P("b.c")}, true},
  };
  return indexes;
}

const std::vector<json>& Docs() {
  static const std::vector<json> docs = {
      json::parse(R"({"a": 1, "b": {"c": "x"}, "u": "k"})"),
      json::parse(R"({"a": "1", "b": {"c": null}, "u": null})"),
      json::parse(R"({"a": [1], "u": 2.5})"),
      json::parse(R"({"b": {"c": true}})"),
      json::parse(R"({"a": -0.0, "u": ""})"),
  };
  return docs;
}

const query::AggregateQuery& Aggregation() {
  static const query::AggregateQuery q =
      query::ParseAggregate(json::array({"a", "b.c"}),
                            json::parse(R"({"n": {"count": "*"}, "s": {"sum": "a"},
                                            "m": {"min": "u"}, "d": {"count_distinct": "u"}})"))
          .value();
  return q;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  json j = json::parse(in, nullptr, false);
  if (!j.is_discarded()) {
    auto f = query::ParseFilter(j);
    if (f.ok()) {
      const query::Plan plan = query::ChoosePlan(*f, Indexes());
      (void)plan.Explain().dump();
      for (size_t i = 0; i < Docs().size(); ++i) {
        if (!query::Matches(*f, Docs()[i]) || plan.kind != query::Plan::Kind::kIndexScan) continue;
        auto e = document::EntryFor(*plan.index, "k", Docs()[i]);
        if (!e) std::abort();  // the plan's index cannot hold a matching document
        bool inside = false;
        for (const auto& r : plan.ranges) {
          inside = inside || (e->key >= r.start && (r.end.empty() || e->key < r.end));
        }
        if (!inside) std::abort();
      }
    }
  }
  // IsJsonText is json::accept's verdict (simdjson deciding most), on text without what
  // accept looks past (a NUL byte, a leading byte order mark).
  if (in.find('\0') == std::string_view::npos && in.substr(0, 3) != "\xEF\xBB\xBF" &&
      document::IsJsonText(in) != json::accept(in)) {
    std::abort();
  }
  auto schema = document::Schema::Parse(in);
  auto doc = document::ParseDocument(in);
  // Parsing only some fields gives the same verdict and the same values.
  static const std::vector<std::string> keep = {"a", "b", "u"};
  auto some = document::ParseDocumentFields(in, keep);
  if (some.ok() != doc.ok()) std::abort();
  if (doc.ok()) {
    for (const auto& [k, v] : some->items()) {
      if (!std::binary_search(keep.begin(), keep.end(), k)) std::abort();
    }
    for (const auto& k : keep) {
      if (doc->contains(k) != some->contains(k)) std::abort();
      if (doc->contains(k) && (*doc)[k] != (*some)[k] && (*doc)[k].dump() != (*some)[k].dump()) {
        std::abort();
      }
    }
  }
  if (doc.ok()) {
    if (schema.ok()) (void)schema->Check(*doc);
    for (const auto& index : Indexes()) {
      auto e = document::EntryFor(index, in, *doc);
      if (!e) continue;
      auto key = document::DocKeyOf(index, *e);
      if (!key.ok() || *key != in) std::abort();
    }
  }
  // A partial aggregate as a storage node would send it (what follows a leading 0x01).
  query::Aggregator agg(Aggregation());
  if (agg.MergePartial(in).ok()) {
    query::Aggregator again(Aggregation());
    if (!again.MergePartial(agg.EncodePartial()).ok()) std::abort();
    if (again.Output().dump() != agg.Output().dump()) std::abort();
  }
  return 0;
}
