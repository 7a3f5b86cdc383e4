// For tests of what feeds bulk loads (the ingest session, the HTTP endpoint, the CLI):
// a KvService whose Ingest writes each record through `write` (by default into `rows`),
// refuses keys that start with "bad" (ABORTED, reason UNIQUE), fails the whole call on
// the chunk that holds line `fail_at` (UNAVAILABLE), and records progress per ingest id.
// Every other call goes to `base`, which may be null when no other call is made.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/kv/forwarding_kv_service.h"

namespace gojodb::kv::testing {

class IngestFake : public ForwardingKvService {
 public:
  IngestFake(KvService* base, size_t max_batch_ops) : ForwardingKvService(base) {
    limits_.max_batch_ops = max_batch_ops;
  }
  const Limits& limits() const override { return limits_; }

  Result<IngestResult> Ingest(const IngestRequest& req) override {
    if (req.records.size() > limits_.max_batch_ops) return Status::Internal("chunk too large");
    chunks.push_back(req.records.size());
    for (const auto& r : req.records) {
      if (r.line == fail_at) return Status::Unavailable("node lost");
    }
    IngestResult out;
    for (const auto& r : req.records) {
      if (r.key.rfind("bad", 0) == 0) {
        out.errors.push_back({r.line, Status::Aborted("refused").WithDetail("reason", "UNIQUE")});
        continue;
      }
      if (write) {
        RETURN_IF_ERROR(write(req.collection, r));
      } else {
        rows[r.key] = r.value;
      }
      ++out.written;
    }
    if (!req.ingest_id.empty()) progress[req.ingest_id] = req.last_line;
    return out;
  }
  Result<uint64_t> IngestProgress(const std::string&, const std::string& id) override {
    auto it = progress.find(id);
    if (it == progress.end()) return Status::NotFound("never used");
    return it->second;
  }

  std::function<Status(const std::string& collection, const IngestRecord&)> write;
  std::vector<size_t> chunks;  // records per call
  std::map<std::string, std::string> rows;
  std::map<std::string, uint64_t> progress;
  uint64_t fail_at = 0;
  Limits limits_;
};

}  // namespace gojodb::kv::testing
