#include "core/consensus/config.h"

namespace gojodb::consensus {

Status Config::Validate() const {
  if (id.none()) return Status::InvalidArgument("consensus: cannot use none as id");
  if (heartbeat_tick <= 0)
    return Status::InvalidArgument("consensus: heartbeat tick must be greater than 0");
  if (election_tick <= heartbeat_tick) {
    return Status::InvalidArgument("consensus: election tick must be greater than heartbeat tick");
  }
  if (storage == nullptr) return Status::InvalidArgument("consensus: storage cannot be null");
  if (max_inflight_msgs == 0)
    return Status::InvalidArgument("consensus: max inflight messages must be greater than 0");
  if (max_inflight_bytes != 0 && max_inflight_bytes < max_size_per_msg) {
    return Status::InvalidArgument("consensus: max inflight bytes must be >= max message size");
  }
  if (read_only_option == ReadOnlyOption::kLeaseBased && !check_quorum) {
    return Status::InvalidArgument("consensus: check_quorum must be enabled for lease-based reads");
  }
  return Status::OK();
}

}  // namespace gojodb::consensus
