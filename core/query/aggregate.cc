#include "core/query/aggregate.h"

#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>

#include "core/mvcc/key_codec.h"

namespace gojodb::query {

using json = nlohmann::json;

namespace {

constexpr std::pair<const char*, AggregateSpec::Fn> kFns[] = {
    {"count", AggregateSpec::Fn::kCount}, {"sum", AggregateSpec::Fn::kSum},
    {"avg", AggregateSpec::Fn::kAvg},     {"min", AggregateSpec::Fn::kMin},
    {"max", AggregateSpec::Fn::kMax},     {"count_distinct", AggregateSpec::Fn::kCountDistinct}};

// The value an encoding stands for (the inverse of document::EncodeValue); missing ->
// nullopt.
std::optional<json> DecodeValue(std::string_view in) {
  if (in.empty()) return std::nullopt;
  const auto tag = static_cast<document::TypeTag>(in[0]);
  in.remove_prefix(1);
  switch (tag) {
    case document::TypeTag::kMissing:
      return std::nullopt;
    case document::TypeTag::kNull:
      return json(nullptr);
    case document::TypeTag::kFalse:
      return json(false);
    case document::TypeTag::kTrue:
      return json(true);
    case document::TypeTag::kNumber: {
      if (in.size() < 8) return std::nullopt;
      uint64_t bits = mvcc::ReadUint64(in);
      bits = (bits & (uint64_t{1} << 63)) ? bits & ~(uint64_t{1} << 63) : ~bits;
      double d;
      std::memcpy(&d, &bits, sizeof(d));
      return json(d);
    }
    case document::TypeTag::kString:
    case document::TypeTag::kComposite: {
      std::string s;
      if (!mvcc::DecodeComparableBytes(in, &s).ok()) return std::nullopt;
      if (tag == document::TypeTag::kString) return json(std::move(s));
      json v = json::parse(s, nullptr, false);
      return v.is_discarded() ? std::nullopt : std::optional<json>(std::move(v));
    }
  }
  return std::nullopt;
}

// A double that holds an integer prints as one.
json Number(double d) {
  if (std::isfinite(d) && std::floor(d) == d && std::abs(d) < 9.007199254740992e15) {
    return json(static_cast<int64_t>(d));
  }
  return json(d);
}

}  // namespace

Result<AggregateQuery> ParseAggregate(const json& group_by, const json& aggregates) {
  AggregateQuery q;
  if (!group_by.is_null()) {
    if (!group_by.is_array())
      return Status::InvalidArgument("'group_by' must be an array of fields");
    if (group_by.size() > document::kMaxPathSegments) {
      return Status::InvalidArgument("'group_by' takes at most 32 fields");
    }
    for (size_t i = 0; i < group_by.size(); ++i) {
      const std::string where = "group_by[" + std::to_string(i) + "]";
      if (!group_by[i].is_string()) return Status::InvalidArgument(where + " must be a field name");
      auto p = document::ParsePath(group_by[i].get<std::string>());
      if (!p.ok()) return Status::InvalidArgument(where + ": " + p.status().message());
      q.group_by.push_back(std::move(*p));
    }
  }
  if (!aggregates.is_object() || aggregates.empty()) {
    return Status::InvalidArgument(
        "'aggregates' must be an object of output names to {\"count\": \"*\"}, {\"sum\": "
        "\"field\"}, …");
  }
  if (aggregates.size() > kMaxAggregates) {
    return Status::InvalidArgument("at most " + std::to_string(kMaxAggregates) + " aggregates");
  }
  for (const auto& [name, spec] : aggregates.items()) {
    const std::string where = "aggregates." + name;
    if (!spec.is_object() || spec.size() != 1) {
      return Status::InvalidArgument(where +
                                     " must be one of {\"count\": \"*\"|field}, {\"sum\"|"
                                     "\"avg\"|\"min\"|\"max\"|\"count_distinct\": field}");
    }
    AggregateSpec a;
    a.name = name;
    const std::string fn = spec.begin().key();
    bool known = false;
    for (const auto& [n, f] : kFns) {
      if (fn == n) a.fn = f, known = true;
    }
    if (!known) {
      return Status::InvalidArgument(where + ": unknown function '" + fn +
                                     "' (count, sum, avg, min, max, count_distinct)");
    }
    const json& arg = spec.begin().value();
    if (!arg.is_string()) return Status::InvalidArgument(where + ": the operand is a field name");
    if (a.fn == AggregateSpec::Fn::kCount && arg.get<std::string>() == "*") {
      a.star = true;
    } else if (arg.get<std::string>() == "*") {
      return Status::InvalidArgument(where + ": \"*\" goes only with count");
    } else {
      auto p = document::ParsePath(arg.get<std::string>());
      if (!p.ok()) return Status::InvalidArgument(where + ": " + p.status().message());
      a.path = std::move(*p);
    }
    q.aggregates.push_back(std::move(a));
  }
  return q;
}

Status Aggregator::CheckSize() const {
  if (groups_.size() <= kMaxGroups) return Status::OK();
  return Status::InvalidArgument("the aggregation has more than " + std::to_string(kMaxGroups) +
                                 " groups; group by fewer distinct values or narrow the filter")
      .WithDetail("reason", "TOO_MANY_GROUPS");
}

Status Aggregator::Add(const json& doc) {
  std::vector<std::string> values;
  std::string key;
  for (const auto& p : q_.group_by) {
    values.push_back(document::EncodeValue(document::Lookup(doc, p)));
    key += values.back();
  }
  auto [it, inserted] = groups_.try_emplace(key);
  Group& g = it->second;
  if (inserted) {
    g.key_values = std::move(values);
    g.states.resize(q_.aggregates.size());
    RETURN_IF_ERROR(CheckSize());
  }
  for (size_t i = 0; i < q_.aggregates.size(); ++i) {
    const AggregateSpec& a = q_.aggregates[i];
    AggState& st = g.states[i];
    if (a.star) {
      ++st.count;
      continue;
    }
    const json* v = document::Lookup(doc, a.path);
    if (v == nullptr || v->is_null()) continue;
    switch (a.fn) {
      case AggregateSpec::Fn::kCount:
        ++st.count;
        break;
      case AggregateSpec::Fn::kSum:
      case AggregateSpec::Fn::kAvg:
        if (!v->is_number()) break;
        ++st.count;
        st.sum += v->get<double>();
        break;
      case AggregateSpec::Fn::kMin:
      case AggregateSpec::Fn::kMax: {
        std::string e = document::EncodeValue(v);
        if (st.min.empty() || e < st.min) st.min = e;
        if (st.max.empty() || e > st.max) st.max = std::move(e);
        break;
      }
      case AggregateSpec::Fn::kCountDistinct:
        st.distinct.insert(document::EncodeValue(v));
        if (st.distinct.size() > kMaxGroups) {
          return Status::InvalidArgument("count_distinct of '" + a.path.text + "' passed " +
                                         std::to_string(kMaxGroups) + " values")
              .WithDetail("reason", "TOO_MANY_GROUPS");
        }
        break;
    }
  }
  return Status::OK();
}

Status Aggregator::MergeGroup(const std::string& key, Group og) {
  auto [it, inserted] = groups_.try_emplace(key);
  if (inserted) {
    it->second = std::move(og);
    return CheckSize();
  }
  for (size_t i = 0; i < og.states.size() && i < it->second.states.size(); ++i) {
    AggState& st = it->second.states[i];
    AggState& o = og.states[i];
    st.count += o.count;
    st.sum += o.sum;
    if (!o.min.empty() && (st.min.empty() || o.min < st.min)) st.min = std::move(o.min);
    if (!o.max.empty() && (st.max.empty() || o.max > st.max)) st.max = std::move(o.max);
    st.distinct.merge(o.distinct);
    if (st.distinct.size() > kMaxGroups) {
      return Status::InvalidArgument("count_distinct of '" + q_.aggregates[i].path.text +
                                     "' passed " + std::to_string(kMaxGroups) + " values")
          .WithDetail("reason", "TOO_MANY_GROUPS");
    }
  }
  return Status::OK();
}

Status Aggregator::Merge(const Aggregator& other) {
  for (const auto& [key, og] : other.groups_) RETURN_IF_ERROR(MergeGroup(key, og));
  return Status::OK();
}

namespace {

constexpr char kPartialFormat = 1;

void PutBytes(std::string* out, std::string_view b) {
  mvcc::AppendUint32(out, static_cast<uint32_t>(b.size()));
  out->append(b);
}

}  // namespace

std::string Aggregator::EncodePartial() const {
  std::string out(1, kPartialFormat);
  mvcc::AppendUint32(&out, static_cast<uint32_t>(q_.group_by.size()));
  mvcc::AppendUint32(&out, static_cast<uint32_t>(q_.aggregates.size()));
  mvcc::AppendUint32(&out, static_cast<uint32_t>(groups_.size()));
  for (const auto& [key, g] : groups_) {
    for (const auto& v : g.key_values) PutBytes(&out, v);
    for (const auto& st : g.states) {
      mvcc::AppendUint64(&out, st.count);
      uint64_t bits;
      std::memcpy(&bits, &st.sum, sizeof(bits));
      mvcc::AppendUint64(&out, bits);
      PutBytes(&out, st.min);
      PutBytes(&out, st.max);
      mvcc::AppendUint32(&out, static_cast<uint32_t>(st.distinct.size()));
      for (const auto& d : st.distinct) PutBytes(&out, d);
    }
  }
  return out;
}

Status Aggregator::MergePartial(std::string_view bytes) {
  auto bad = [](const std::string& why) {
    return Status::InvalidArgument("partial aggregate: " + why);
  };
  if (bytes.empty() || bytes[0] != kPartialFormat) return bad("unknown format");
  mvcc::FieldReader r(bytes.substr(1));
  uint32_t nkeys, naggs, ngroups;
  if (!r.U32(&nkeys) || !r.U32(&naggs) || !r.U32(&ngroups)) return bad("truncated header");
  if (nkeys != q_.group_by.size() || naggs != q_.aggregates.size()) {
    return bad("written for another query (" + std::to_string(nkeys) + " group_by fields, " +
               std::to_string(naggs) + " aggregates)");
  }
  for (uint32_t gi = 0; gi < ngroups; ++gi) {
    Group g;
    std::string key;
    g.key_values.resize(nkeys);
    for (auto& v : g.key_values) {
      if (!r.Bytes(&v)) return bad("truncated group key");
      key += v;
    }
    g.states.resize(naggs);
    for (auto& st : g.states) {
      uint64_t bits;
      uint32_t ndistinct;
      if (!r.U64(&st.count) || !r.U64(&bits) || !r.Bytes(&st.min) || !r.Bytes(&st.max) ||
          !r.U32(&ndistinct)) {
        return bad("truncated state");
      }
      std::memcpy(&st.sum, &bits, sizeof(bits));
      if (ndistinct > kMaxGroups) return bad("too many distinct values");
      for (uint32_t i = 0; i < ndistinct; ++i) {
        std::string d;
        if (!r.Bytes(&d)) return bad("truncated distinct value");
        st.distinct.insert(std::move(d));
      }
    }
    RETURN_IF_ERROR(MergeGroup(key, std::move(g)));
  }
  if (!r.done()) return bad("trailing bytes");
  return Status::OK();
}

json Aggregator::Output() const {
  json groups = json::array();
  std::map<std::string, Group> none;
  if (q_.group_by.empty() && groups_.empty()) {
    // Without group_by there is always the one group, even over no documents.
    none[""].states.resize(q_.aggregates.size());
  }
  for (const auto& [key, g] : groups_.empty() ? none : groups_) {
    json k = json::object(), values = json::object();
    for (size_t i = 0; i < q_.group_by.size(); ++i) {
      auto v = DecodeValue(g.key_values[i]);
      if (v) k[q_.group_by[i].text] = std::move(*v);  // missing: left out
    }
    for (size_t i = 0; i < q_.aggregates.size(); ++i) {
      const AggregateSpec& a = q_.aggregates[i];
      const AggState& st = g.states[i];
      json v;
      switch (a.fn) {
        case AggregateSpec::Fn::kCount:
          v = st.count;
          break;
        case AggregateSpec::Fn::kSum:
          v = Number(st.sum);
          break;
        case AggregateSpec::Fn::kAvg:
          v = st.count == 0 ? json(nullptr) : json(st.sum / static_cast<double>(st.count));
          break;
        case AggregateSpec::Fn::kMin:
          v = st.min.empty() ? json(nullptr) : DecodeValue(st.min).value_or(json(nullptr));
          break;
        case AggregateSpec::Fn::kMax:
          v = st.max.empty() ? json(nullptr) : DecodeValue(st.max).value_or(json(nullptr));
          break;
        case AggregateSpec::Fn::kCountDistinct:
          v = st.distinct.size();
          break;
      }
      values[a.name] = std::move(v);
    }
    groups.push_back({{"key", std::move(k)}, {"values", std::move(values)}});
  }
  return {{"groups", std::move(groups)}};
}

}  // namespace gojodb::query
