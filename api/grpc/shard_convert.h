// Conversions between the controller's shard descriptor (controller::ShardRecord) and
// its wire form (v1::ShardDescriptor, controller.proto), shared by the controller's
// services, the storage nodes and the gateway.
#pragma once

#include "core/controller/state.h"
#include "gojodb/v1/controller.pb.h"

namespace gojodb::rpc {

void ToProto(const controller::ShardRecord& in, v1::ShardDescriptor* out);
controller::ShardRecord FromProto(const v1::ShardDescriptor& in);

}  // namespace gojodb::rpc
