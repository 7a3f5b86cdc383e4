#include "api/grpc/convert.h"

#include <absl/synchronization/mutex.h>

namespace gojodb::rpc {
namespace {
constexpr std::string_view kDetailPrefix = "gojodb-";
}

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
                   i.unique(), i.id()});
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
  }
}

void ToProto(const kv::CollectionInfo& in, v1::CollectionInfo* out) {
  out->set_name(in.name);
  out->set_id(in.id);
  out->set_created_at(in.created_at);
  out->set_schema_json(in.schema_json);
  ToProto(in.indexes, out->mutable_indexes());
}

kv::CollectionInfo FromProto(const v1::CollectionInfo& in) {
  return {in.name(), in.id(), in.created_at(), in.schema_json(), FromProto(in.indexes())};
}

}  // namespace gojodb::rpc
