// One bulk load, fed in pieces: records in line order go out in chunks of at most
// Limits::max_batch_ops records and kChunkBytes bytes, one chunk after the other, and
// each chunk's refusals are merged in line order with the lines refused before they got
// here (a line that is not JSON, a record without a key). With an ingest id, lines at or
// below the id's recorded progress are skipped, and every chunk records the last line it
// covers (docs/architecture/documents.md, "Bulk ingest").
//
// The HTTP NDJSON endpoint feeds one session the whole body; the gRPC stream feeds it one
// message at a time; the client library in routed mode runs it in the client's process.
// Not thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/kv/kv_service.h"
#include "internal/status.h"

namespace gojodb::kv {

struct IngestSummary {
  uint64_t lines_done = 0;          // every line at or below it is in or was refused
  uint64_t written = 0;             // records written
  uint64_t skipped = 0;             // records at or below the id's earlier progress
  uint64_t failed = 0;              // lines refused, listed or not
  std::vector<IngestError> errors;  // the first kMaxErrorsListed refusals, in line order
};

// A bulk load fed piece by piece: an IngestSession in this process, or a stream to a
// server that runs one (pkg/client).
class IngestStream {
 public:
  virtual ~IngestStream() = default;
  // As IngestSession::Add.
  virtual Status Add(std::vector<IngestRecord> records, std::vector<IngestError> refused,
                     uint64_t last_line) = 0;
  // Ends the load; as IngestSession::Finish.
  virtual Result<IngestSummary> Finish() = 0;
};

class IngestSession final : public IngestStream {
 public:
  static constexpr size_t kMaxErrorsListed = 1000;
  static constexpr size_t kChunkBytes = 4u << 20;

  // Reads the ingest id's progress; an id never used starts from nothing. An empty id
  // records nothing and skips nothing.
  static Result<IngestSession> Open(KvService* kv, std::string collection, std::string ingest_id);

  // Writes `records` and reports `refused`, both in ascending line order, above every
  // line given before and at most `last_line`, the last line this piece covers.
  // INVALID_ARGUMENT when the lines are out of order. Any other error is the whole
  // load's (unavailable, deadline): it carries the details `lines_done` and `written`, and
  // an unknown part of the failed chunk may be in.
  Status Add(std::vector<IngestRecord> records, std::vector<IngestError> refused,
             uint64_t last_line) override;

  // Records the progress of trailing lines that held no record, and returns the summary.
  Result<IngestSummary> Finish() override;

  const IngestSummary& summary() const { return summary_; }
  // The progress the id had when the session opened (0 without an id).
  uint64_t resumed_from() const { return done_; }

 private:
  IngestSession(KvService* kv, std::string collection, std::string ingest_id, uint64_t done);
  void Report(const IngestError& e);
  Status FailedMidway(const Status& s) const;

  KvService* kv_;
  std::string collection_;
  std::string ingest_id_;
  uint64_t done_ = 0;       // the id's progress at Open
  uint64_t last_line_ = 0;  // the highest line given to Add
  uint64_t recorded_ = 0;   // the progress last recorded under the id
  IngestSummary summary_;
};

}  // namespace gojodb::kv
