// NDJSON bulk-load input: one JSON document per line, as the HTTP bulk endpoint and the
// CLI's import read it (docs/architecture/documents.md, "Bulk ingest"). Pure; fuzzed.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/kv/kv_service.h"
#include "internal/status.h"

namespace gojodb::kv {

// A bulk load's NDJSON body: one JSON object per line, its key in the top-level field
// `key_field` (a string, or an integer as its decimal text). Lines are numbered from
// first_line; blank lines count but hold nothing. A line that cannot be a record is an
// error of its own (INVALID_ARGUMENT with reason NOT_JSON, NOT_A_DOCUMENT or NO_KEY);
// the call fails only for bad parameters.
struct NdjsonRecords {
  std::vector<IngestRecord> records;
  std::vector<IngestError> errors;
  uint64_t lines = 0;      // lines in the body
  uint64_t last_line = 0;  // the number of its last line (first_line - 1 if none)
};
Result<NdjsonRecords> DecodeNdjson(std::string_view body, uint64_t first_line,
                                   const std::string& key_field);

}  // namespace gojodb::kv
