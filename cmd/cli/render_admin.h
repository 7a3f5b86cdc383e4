// Rendering of the controller's operator API answers (controller.proto) for the CLI's
// cluster administration commands, in table or JSON mode. As render.h: every function
// returns complete lines, each ending in '\n'.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "cmd/cli/render.h"
#include "gojodb/v1/controller.pb.h"

namespace gojodb::cli {

// ID / ADDRESS / HTTP / STATE / ADMIN / ZONE / SHARDS / LEADERS / USED / CAPACITY.
std::string RenderNodeList(OutputMode mode, const v1::ListNodesResponse& r);
std::string RenderDecommissioned(OutputMode mode, uint64_t node_id);

// ID / START / END / REPLICAS / LEADER / EPOCH; JSON keys follow API.md's key rules.
std::string RenderShardMap(OutputMode mode, const v1::GetShardMapResponse& r);

std::string RenderControllerAdded(OutputMode mode, uint64_t id, const std::string& grpc_addr);
std::string RenderControllerRemoved(OutputMode mode, uint64_t id);

// NAME / VALUE, one row per setting; JSON: {"replication_factor": 3, ...}.
std::string RenderSettings(OutputMode mode, const v1::Settings& s);

// One timestamp a line; JSON: {"timestamps":[...]}.
std::string RenderTimestamps(OutputMode mode, const v1::GetTimestampsResponse& r);

// 1536 -> "1.5 KiB"; below 1 KiB, "512 B".
std::string HumanBytes(uint64_t bytes);

}  // namespace gojodb::cli
