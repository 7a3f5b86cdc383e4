#include "api/grpc/shard_convert.h"

namespace gojodb::rpc {

void ToProto(const controller::ShardRecord& in, v1::ShardDescriptor* out) {
  out->set_id(in.id);
  out->set_start_key(in.start_key);
  out->set_end_key(in.end_key);
  out->set_conf_ver(in.epoch.conf_ver);
  out->set_version(in.epoch.version);
  for (const auto& r : in.replicas) {
    auto* p = out->add_replicas();
    p->set_node(r.node);
    p->set_learner(r.learner);
  }
  out->set_leader(in.leader);
}

controller::ShardRecord FromProto(const v1::ShardDescriptor& in) {
  controller::ShardRecord s;
  s.id = in.id();
  s.start_key = in.start_key();
  s.end_key = in.end_key();
  s.epoch = {in.conf_ver(), in.version()};
  for (const auto& r : in.replicas()) s.replicas.push_back({r.node(), r.learner()});
  s.leader = in.leader();
  return s;
}

void SetStatus(const Status& in, v1::ShardBatchResult* out) {
  out->set_code(static_cast<int32_t>(in.code()));
  out->set_message(in.message());
  for (const auto& [name, value] : in.details()) (*out->mutable_details())[name] = value;
}

Status StatusOf(const v1::ShardBatchResult& in) {
  if (in.code() == 0) return Status::OK();
  const int code = in.code();
  Status s(code > 0 && code <= 16 ? static_cast<StatusCode>(code) : StatusCode::kUnknown,
           in.message());
  for (const auto& [name, value] : in.details()) s = s.WithDetail(name, value);
  return s;
}

void ToProto(const txn::TxnOutcome& in, v1::ShardTxnResponse* out) {
  if (!in.ok()) out->set_error(std::string(txn::TxnErrorName(in.error)));
  out->set_message(in.message);
  out->set_row_key(in.row_key);
  if (in.lock) {
    auto* l = out->mutable_lock();
    l->set_start_ts(in.lock->start_ts);
    l->set_primary(in.lock->primary);
    l->set_ttl_ms(in.lock->ttl_ms);
    l->set_min_commit_ts(in.lock->min_commit_ts);
  }
  out->set_conflict_ts(in.conflict_ts);
  out->set_commit_ts(in.commit_ts);
  out->set_min_commit_ts(in.min_commit_ts);
  out->set_state(std::string(txn::TxnStateName(in.state)));
}

Result<txn::TxnOutcome> FromProto(const v1::ShardTxnResponse& in) {
  txn::TxnOutcome o;
  auto error = txn::TxnErrorFromName(in.error());
  auto state = txn::TxnStateFromName(in.state());
  if (!error || !state) {
    return Status::DataLoss("unknown transaction outcome '" + in.error() + "'/'" + in.state() +
                            "'");
  }
  o.error = *error;
  o.state = *state;
  o.message = in.message();
  o.row_key = in.row_key();
  if (in.has_lock()) {
    txn::Lock l;
    l.start_ts = in.lock().start_ts();
    l.primary = in.lock().primary();
    l.ttl_ms = in.lock().ttl_ms();
    l.min_commit_ts = in.lock().min_commit_ts();
    o.lock = std::move(l);
  }
  o.conflict_ts = in.conflict_ts();
  o.commit_ts = in.commit_ts();
  o.min_commit_ts = in.min_commit_ts();
  return o;
}

}  // namespace gojodb::rpc
