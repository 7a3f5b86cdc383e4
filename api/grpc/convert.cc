#include "api/grpc/convert.h"

#include <absl/synchronization/mutex.h>

#include <nlohmann/json.hpp>

namespace gojodb::rpc {
namespace {
constexpr std::string_view kDetailPrefix = "gojodb-";
using json = nlohmann::json;
}  // namespace

void TuneGrpcRuntime() { absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore); }

void TuneServerBuilder(grpc::ServerBuilder* builder, bool share_port) {
  builder->AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, share_port ? 1 : 0);
  using Option = grpc::ServerBuilder::SyncServerOption;
  builder->SetSyncServerOption(Option::MIN_POLLERS, 2);
  // Idle threads beyond this exit; the number in use is bounded by concurrent requests.
  builder->SetSyncServerOption(Option::MAX_POLLERS, 1024);
}

grpc::Status ToGrpc(const Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), s.message());
}

void AddDetailsToContext(const Status& s, grpc::ServerContextBase* ctx) {
  for (const auto& [name, value] : s.details()) {
    ctx->AddTrailingMetadata(std::string(kDetailPrefix) + name, value);
  }
}

Status FromGrpc(const grpc::Status& s, const grpc::ClientContext* ctx) {
  if (s.ok()) return Status::OK();
  int code = static_cast<int>(s.error_code());
  Status out(code >= 0 && code <= 16 ? static_cast<StatusCode>(code) : StatusCode::kUnknown,
             s.error_message());
  if (ctx) {
    for (const auto& [k, v] : ctx->GetServerTrailingMetadata()) {
      std::string_view key(k.data(), k.size());
      if (key.substr(0, kDetailPrefix.size()) == kDetailPrefix) {
        out = out.WithDetail(std::string(key.substr(kDetailPrefix.size())),
                             std::string(v.data(), v.size()));
      }
    }
  }
  return out;
}

kv::Consistency FromProto(v1::Consistency c) {
  switch (c) {
    case v1::SNAPSHOT:
      return kv::Consistency::kSnapshot;
    case v1::STALE:
      return kv::Consistency::kStale;
    default:
      return kv::Consistency::kLinearizable;
  }
}

v1::Consistency ToProto(kv::Consistency c) {
  switch (c) {
    case kv::Consistency::kSnapshot:
      return v1::SNAPSHOT;
    case kv::Consistency::kStale:
      return v1::STALE;
    default:
      return v1::LINEARIZABLE;
  }
}

std::vector<kv::IndexSpec> FromProto(const google::protobuf::RepeatedPtrField<v1::IndexSpec>& in) {
  std::vector<kv::IndexSpec> out;
  for (const auto& i : in) {
    out.push_back({i.name(), std::vector<std::string>(i.fields().begin(), i.fields().end()),
                   i.unique(), i.id(), i.state(), i.usable_from_ts(), i.build_resume(), i.error()});
  }
  return out;
}

void ToProto(const std::vector<kv::IndexSpec>& in,
             google::protobuf::RepeatedPtrField<v1::IndexSpec>* out) {
  for (const auto& i : in) {
    auto* p = out->Add();
    p->set_name(i.name);
    for (const auto& f : i.fields) p->add_fields(f);
    p->set_unique(i.unique);
    p->set_id(i.id);
    p->set_state(i.state);
    p->set_usable_from_ts(i.usable_from_ts);
    p->set_build_resume(i.build_resume);
    p->set_error(i.error);
  }
}

void ToProto(const kv::CollectionInfo& in, v1::CollectionInfo* out) {
  out->set_name(in.name);
  out->set_id(in.id);
  out->set_created_at(in.created_at);
  out->set_schema_json(in.schema_json);
  ToProto(in.indexes, out->mutable_indexes());
  out->set_schema_lease_ms(in.schema_lease_ms);
  out->set_schema_version(in.schema_version);
}

kv::CollectionInfo FromProto(const v1::CollectionInfo& in) {
  return {in.name(),
          in.id(),
          in.created_at(),
          in.schema_json(),
          FromProto(in.indexes()),
          in.schema_lease_ms(),
          in.schema_version()};
}

void ToProto(const kv::QueryRequest& in, v1::QueryRequest* out) {
  out->set_collection(in.collection);
  out->set_filter_json(in.filter_json);
  for (const auto& [field, descending] : in.sort) {
    auto* s = out->add_sort();
    s->set_field(field);
    s->set_descending(descending);
  }
  for (const auto& p : in.projection) out->add_projection(p);
  out->set_limit(static_cast<uint32_t>(std::min<size_t>(in.limit, UINT32_MAX)));
  out->set_cursor(in.cursor);
  out->set_consistency(ToProto(in.consistency));
  out->set_at(in.at);
  out->set_explain(in.explain);
}

kv::QueryRequest FromProto(const v1::QueryRequest& in) {
  kv::QueryRequest q;
  q.collection = in.collection();
  q.filter_json = in.filter_json();
  for (const auto& s : in.sort()) q.sort.emplace_back(s.field(), s.descending());
  q.projection.assign(in.projection().begin(), in.projection().end());
  q.limit = in.limit();
  q.cursor = in.cursor();
  q.consistency = FromProto(in.consistency());
  q.at = in.at();
  q.explain = in.explain();
  return q;
}

Status ToProto(const kv::AggregateRequest& in, v1::AggregateRequest* out) {
  out->set_collection(in.collection);
  out->set_filter_json(in.filter_json);
  if (!in.group_by_json.empty()) {
    json g = json::parse(in.group_by_json, nullptr, false);
    if (!g.is_array()) return Status::InvalidArgument("'group_by' must be an array of fields");
    for (const auto& f : g) {
      if (!f.is_string()) return Status::InvalidArgument("'group_by' must list field paths");
      out->add_group_by(f.get<std::string>());
    }
  }
  json a = json::parse(in.aggregates_json, nullptr, false);
  if (!a.is_object()) return Status::InvalidArgument("'aggregates' must be an object");
  for (const auto& [name, spec] : a.items()) {
    if (!spec.is_object() || spec.size() != 1 || !spec.begin().value().is_string()) {
      return Status::InvalidArgument("aggregate '" + name +
                                     "' must be one {\"op\": \"field\"}, as {\"sum\": \"age\"}");
    }
    auto* p = out->add_aggregates();
    p->set_name(name);
    p->set_op(spec.begin().key());
    p->set_field(spec.begin().value().get<std::string>());
  }
  out->set_consistency(ToProto(in.consistency));
  out->set_at(in.at);
  out->set_explain(in.explain);
  return Status::OK();
}

Result<kv::AggregateRequest> FromProto(const v1::AggregateRequest& in) {
  kv::AggregateRequest a;
  a.collection = in.collection();
  a.filter_json = in.filter_json();
  if (!in.group_by().empty()) {
    json g = json::array();
    for (const auto& f : in.group_by()) g.push_back(f);
    a.group_by_json = g.dump();
  }
  json aggs = json::object();
  for (int i = 0; i < in.aggregates_size(); ++i) {
    const auto& s = in.aggregates(i);
    const std::string where = "aggregates[" + std::to_string(i) + "]: ";
    if (s.name().empty()) return Status::InvalidArgument(where + "name is required");
    if (aggs.contains(s.name())) {
      return Status::InvalidArgument(where + "name '" + s.name() + "' is given twice");
    }
    aggs[s.name()] = json{{s.op(), s.field()}};
  }
  a.aggregates_json = aggs.dump();
  a.consistency = FromProto(in.consistency());
  a.at = in.at();
  a.explain = in.explain();
  return a;
}

Result<std::vector<v1::AggregateResponse>> SplitGroups(const kv::AggregateResult& r,
                                                       size_t max_bytes) {
  json groups = json::parse(r.groups_json, nullptr, false);
  if (!groups.is_array()) return Status::Internal("an aggregation's groups are not an array");
  std::vector<v1::AggregateResponse> out(1);
  out[0].set_read_ts(r.read_ts);
  out[0].set_plan_json(r.plan_json);
  size_t bytes = 0;
  for (const auto& g : groups) {
    v1::AggregateGroup group;
    group.set_key_json(g.contains("key") ? g["key"].dump() : "{}");
    group.set_values_json(g.contains("values") ? g["values"].dump() : "{}");
    const size_t size = group.key_json().size() + group.values_json().size() + 8;
    if (bytes > 0 && bytes + size > max_bytes) {
      out.emplace_back();
      bytes = 0;
    }
    bytes += size;
    *out.back().add_groups() = std::move(group);
  }
  return out;
}

kv::AggregateResult JoinGroups(const std::vector<v1::AggregateResponse>& parts) {
  kv::AggregateResult r;
  std::string groups = "[";
  for (const auto& p : parts) {
    for (const auto& g : p.groups()) {
      if (groups.size() > 1) groups += ',';
      groups += "{\"key\":" + g.key_json() + ",\"values\":" + g.values_json() + "}";
    }
  }
  groups += ']';
  r.groups_json = std::move(groups);
  if (!parts.empty()) {
    r.read_ts = parts.front().read_ts();
    r.plan_json = parts.front().plan_json();
  }
  return r;
}

void ToProto(const kv::IngestError& in, v1::IngestError* out) {
  out->set_line(in.line);
  out->set_code(std::string(StatusCodeName(in.status.code())));
  out->set_message(in.status.message());
  for (const auto& [k, v] : in.status.details()) (*out->mutable_details())[k] = v;
}

kv::IngestError FromProto(const v1::IngestError& in) {
  auto code = StatusCodeFromName(in.code());
  Status s(code && *code != StatusCode::kOk ? *code : StatusCode::kInvalidArgument, in.message());
  // In name order, so that both sides list them alike.
  std::map<std::string, std::string> details(in.details().begin(), in.details().end());
  for (const auto& [k, v] : details) s = s.WithDetail(k, v);
  return {in.line(), std::move(s)};
}

void ToProto(const kv::IngestSummary& in, v1::IngestResponse* out) {
  out->set_lines_done(in.lines_done);
  out->set_written(in.written);
  out->set_skipped(in.skipped);
  out->set_failed(in.failed);
  for (const auto& e : in.errors) ToProto(e, out->add_errors());
}

kv::IngestSummary FromProto(const v1::IngestResponse& in) {
  kv::IngestSummary s;
  s.lines_done = in.lines_done();
  s.written = in.written();
  s.skipped = in.skipped();
  s.failed = in.failed();
  for (const auto& e : in.errors()) s.errors.push_back(FromProto(e));
  return s;
}

}  // namespace gojodb::rpc
