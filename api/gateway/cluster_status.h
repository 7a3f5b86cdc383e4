// The cluster's status as the gateway and the standalone server report it: Admin's
// ClusterStatus (gRPC) and GET /v1/cluster/status (JSON), both from the controllers'
// view through ClusterKv. `mode` names the deployment ("cluster" for gojodb-api,
// "standalone" for gojodb-standalone).
#pragma once

#include <string>

#include "api/gateway/cluster_kv.h"
#include "gojodb/v1/kv.pb.h"

namespace gojodb::gateway {

// The controllers' answer with `mode` set; when no controller answers, an empty
// status that names only the mode and the version.
v1::ClusterStatusResponse ClusterStatusProto(ClusterKv* kv, const std::string& mode);

// GET /v1/cluster/status: {"mode","version","controllers","leader","storage_nodes",
// "shards"}, or {"mode","version","error":{"code","message"}} when no controller
// answers. Ends with a newline.
std::string ClusterStatusJson(ClusterKv* kv, const std::string& mode);

}  // namespace gojodb::gateway
