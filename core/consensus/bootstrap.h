// Bootstrap: the initial state of a brand-new group.
#pragma once

#include <vector>

#include "core/consensus/storage.h"

namespace gojodb::consensus {

// Writes the initial membership of a new group into an empty storage, as etcd does:
// one committed ConfChange (add voter) entry per member at term 1, plus the matching
// ConfState and hard state. Because the membership is in the log, a node that joins
// later with an empty storage learns it by replaying the log from index 1 (or from a
// snapshot). Every founding member must be bootstrapped with the same list.
// FailedPrecondition if the storage is not empty.
Status Bootstrap(MemoryStorage* storage, const std::vector<NodeId>& voters);

}  // namespace gojodb::consensus
