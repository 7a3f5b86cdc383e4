// Conversions between the controller's shard descriptor (controller::ShardRecord) and
// its wire form (v1::ShardDescriptor, controller.proto), shared by the controller's
// services, the storage nodes and the gateway; and of the status of a ShardKv.Batch item
// (shard.proto), which the storage node writes and the router reads; and of a
// transaction command's outcome.
#pragma once

#include "core/controller/state.h"
#include "core/txn/percolator.h"
#include "gojodb/v1/controller.pb.h"
#include "gojodb/v1/shard.pb.h"
#include "internal/status.h"

namespace gojodb::rpc {

void ToProto(const controller::ShardRecord& in, v1::ShardDescriptor* out);
controller::ShardRecord FromProto(const v1::ShardDescriptor& in);

// An item's status as its own call would end: code, message, and the details a unary
// call carries in trailing metadata.
void SetStatus(const Status& in, v1::ShardBatchResult* out);
Status StatusOf(const v1::ShardBatchResult& in);

// A transaction command's outcome (ShardKv.Txn's answer). FromProto fails with DATA_LOSS
// on names it does not know.
void ToProto(const txn::TxnOutcome& in, v1::ShardTxnResponse* out);
Result<txn::TxnOutcome> FromProto(const v1::ShardTxnResponse& in);

}  // namespace gojodb::rpc
