// The RocksDB adapter of Engine: the only code that includes RocksDB headers.
#pragma once

#include "core/storage_engine/engine.h"

namespace gojodb::storage {

Result<std::unique_ptr<Engine>> OpenRocksDbEngine(const EngineOptions& options);

}  // namespace gojodb::storage
