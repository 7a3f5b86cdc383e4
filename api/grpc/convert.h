// Conversions between gRPC/protobuf types and GojoDB's Status and core/kv types.
// Shared by the gRPC server and the C++ client so both sides agree exactly.
#pragma once

#include <grpcpp/grpcpp.h>

#include "core/kv/ingest_session.h"
#include "core/kv/kv_service.h"
#include "gojodb/v1/kv.pb.h"
#include "internal/status.h"

namespace gojodb::rpc {

// Status details travel as trailing metadata "gojodb-<name>".
grpc::Status ToGrpc(const Status& s);
void AddDetailsToContext(const Status& s, grpc::ServerContextBase* ctx);
Status FromGrpc(const grpc::Status& s, const grpc::ClientContext* ctx);

// Process-wide gRPC runtime settings for servers and clients. Debian's Abseil is built
// with mutex deadlock detection on, which makes every lock gRPC takes walk a global
// graph; this turns the detection off (idempotent).
void TuneGrpcRuntime();

// Settings every GojoDB gRPC server takes. A synchronous server's handler threads stay
// for the next request: gRPC's default (at most 2 idle polling threads) makes a thread
// that finished a request exit whenever more than two are idle, so under concurrent
// load nearly every request started and tore down a thread. And the listening port is
// the server's alone (no SO_REUSEPORT, gRPC's default): a second process given the same
// address fails to start instead of silently taking half the connections.
// `share_port`: keep SO_REUSEPORT (a port handed over from a socket that reserved it).
void TuneServerBuilder(grpc::ServerBuilder* builder, bool share_port = false);

kv::Consistency FromProto(v1::Consistency c);
v1::Consistency ToProto(kv::Consistency c);

void ToProto(const kv::CollectionInfo& in, v1::CollectionInfo* out);
kv::CollectionInfo FromProto(const v1::CollectionInfo& in);
std::vector<kv::IndexSpec> FromProto(const google::protobuf::RepeatedPtrField<v1::IndexSpec>& in);
void ToProto(const std::vector<kv::IndexSpec>& in,
             google::protobuf::RepeatedPtrField<v1::IndexSpec>* out);

// Documents. The aggregation's JSON fields (group_by_json, aggregates_json) become typed
// fields; INVALID_ARGUMENT when they are not what an HTTP body would give.
void ToProto(const kv::QueryRequest& in, v1::QueryRequest* out);
kv::QueryRequest FromProto(const v1::QueryRequest& in);
Status ToProto(const kv::AggregateRequest& in, v1::AggregateRequest* out);
Result<kv::AggregateRequest> FromProto(const v1::AggregateRequest& in);
// An aggregation's groups (a JSON array of {"key", "values"}) in messages of about
// `max_bytes` at most (one group may exceed it); the first carries read_ts and the plan.
Result<std::vector<v1::AggregateResponse>> SplitGroups(const kv::AggregateResult& r,
                                                       size_t max_bytes);
// The inverse: the messages joined into one result.
kv::AggregateResult JoinGroups(const std::vector<v1::AggregateResponse>& parts);

void ToProto(const kv::IngestError& in, v1::IngestError* out);
// An unknown code becomes INVALID_ARGUMENT.
kv::IngestError FromProto(const v1::IngestError& in);
void ToProto(const kv::IngestSummary& in, v1::IngestResponse* out);
kv::IngestSummary FromProto(const v1::IngestResponse& in);

}  // namespace gojodb::rpc
