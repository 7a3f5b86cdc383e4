#include "core/query/shard_query.h"

#include <nlohmann/json.hpp>
#include <set>

namespace gojodb::query {

using json = nlohmann::json;

json Project(const json& doc, const std::vector<document::Path>& paths) {
  if (paths.empty()) return doc;
  json out = json::object();
  for (const auto& p : paths) {
    const json* v = document::Lookup(doc, p);
    if (!v) continue;
    json* cur = &out;
    for (size_t i = 0; i + 1 < p.segments.size(); ++i) {
      json& next = (*cur)[p.segments[i]];
      if (!next.is_object()) next = json::object();
      cur = &next;
    }
    (*cur)[p.segments.back()] = *v;
  }
  return out;
}

namespace {

void AddField(const document::Path& p, std::set<std::string>* out) {
  if (!p.segments.empty()) out->insert(p.segments[0]);
}

void AddFilterFields(const Filter& f, std::set<std::string>* out) {
  if (f.kind == Filter::Kind::kCompare) AddField(f.path, out);
  for (const auto& c : f.children) AddFilterFields(c, out);
}

}  // namespace

Result<std::unique_ptr<ShardQuery>> ParseShardQuery(const ShardQueryText& text) {
  auto q = std::make_unique<ShardQuery>();
  ASSIGN_OR_RETURN(json filter, ParseJsonText(text.filter_json, "filter"));
  ASSIGN_OR_RETURN(q->filter, ParseFilter(filter));
  auto paths = [](const std::vector<std::string>& in, const char* what,
                  std::vector<document::Path>* out) -> Status {
    for (size_t i = 0; i < in.size(); ++i) {
      auto p = document::ParsePath(in[i]);
      if (!p.ok()) return p.status().WithContext(std::string(what) + "[" + std::to_string(i) + "]");
      out->push_back(std::move(*p));
    }
    return Status::OK();
  };
  RETURN_IF_ERROR(paths(text.projection, "projection", &q->projection));
  RETURN_IF_ERROR(paths(text.sort, "sort", &q->sort));
  if (!text.aggregates_json.empty()) {
    ASSIGN_OR_RETURN(json group_by, ParseJsonText(text.group_by_json, "group_by"));
    ASSIGN_OR_RETURN(json aggregates, ParseJsonText(text.aggregates_json, "aggregates"));
    ASSIGN_OR_RETURN(q->aggregate, ParseAggregate(group_by, aggregates));
  } else if (text.limit == 0) {
    return Status::InvalidArgument("a shard query needs a limit or an aggregation");
  }
  q->limit = text.limit;
  q->max_bytes = text.max_bytes;
  std::set<std::string> fields;
  AddFilterFields(q->filter, &fields);
  for (const auto& p : q->projection) AddField(p, &fields);
  for (const auto& p : q->sort) AddField(p, &fields);
  if (q->aggregate) {
    for (const auto& p : q->aggregate->group_by) AddField(p, &fields);
    for (const auto& a : q->aggregate->aggregates) {
      if (!a.star) AddField(a.path, &fields);
    }
  }
  q->fields.assign(fields.begin(), fields.end());
  return q;
}

ShardQueryRun::ShardQueryRun(const ShardQuery& q) : q_(q) {
  if (q.aggregate) agg_.emplace(*q.aggregate);
}

Result<bool> ShardQueryRun::Add(std::string_view key, std::string_view value, uint64_t version) {
  ++examined_;
  auto doc = document::ParseDocumentFields(value, q_.fields);
  if (!doc.ok() || !Matches(q_.filter, *doc)) return true;
  ++matched_;
  if (agg_) {
    RETURN_IF_ERROR(agg_->Add(*doc));
    return true;
  }
  Match m;
  m.key.assign(key);
  m.version = version;
  m.sort_values.reserve(q_.sort.size());
  for (const auto& p : q_.sort)
    m.sort_values.push_back(document::EncodeValue(document::Lookup(*doc, p)));
  m.value = q_.projection.empty() ? std::string(value) : Project(*doc, q_.projection).dump();
  bytes_ += m.key.size() + m.value.size();
  matches_.push_back(std::move(m));
  return matches_.size() < q_.limit && (q_.max_bytes == 0 || bytes_ < q_.max_bytes);
}

Status ShardQueryRun::Absorb(const ShardQueryRun& other) {
  if (!agg_ || !other.agg_) return Status::InvalidArgument("only aggregating runs merge");
  RETURN_IF_ERROR(agg_->Merge(*other.agg_));
  examined_ += other.examined_;
  matched_ += other.matched_;
  return Status::OK();
}

}  // namespace gojodb::query
