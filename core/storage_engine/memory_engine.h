// An in-memory Engine: multi-versioned ordered maps, for tests and ephemeral use.
// Nothing survives the process. SyncWal is a no-op.
#pragma once

#include "core/storage_engine/engine.h"

namespace gojodb::storage {

// Caller owns the result.
Engine* NewMemoryEngine(const EngineOptions& options);

}  // namespace gojodb::storage
