#include "core/kv/ingest_session.h"

#include <algorithm>
#include <utility>

namespace gojodb::kv {
namespace {

Status OutOfOrder(uint64_t line, uint64_t after) {
  return Status::InvalidArgument("ingest lines must ascend: line " + std::to_string(line) +
                                 " came after line " + std::to_string(after));
}

}  // namespace

Result<IngestSession> IngestSession::Open(KvService* kv, std::string collection,
                                          std::string ingest_id) {
  uint64_t done = 0;
  if (!ingest_id.empty()) {
    auto p = kv->IngestProgress(collection, ingest_id);
    if (p.ok()) {
      done = *p;
    } else if (p.status().code() != StatusCode::kNotFound) {
      return p.status();
    }
  }
  return IngestSession(kv, std::move(collection), std::move(ingest_id), done);
}

IngestSession::IngestSession(KvService* kv, std::string collection, std::string ingest_id,
                             uint64_t done)
    : kv_(kv),
      collection_(std::move(collection)),
      ingest_id_(std::move(ingest_id)),
      done_(done),
      recorded_(done) {
  summary_.lines_done = done;
}

void IngestSession::Report(const IngestError& e) {
  ++summary_.failed;
  if (summary_.errors.size() < kMaxErrorsListed) summary_.errors.push_back(e);
}

Status IngestSession::FailedMidway(const Status& s) const {
  return s.WithDetail("lines_done", std::to_string(summary_.lines_done))
      .WithDetail("written", std::to_string(summary_.written));
}

Status IngestSession::Add(std::vector<IngestRecord> records, std::vector<IngestError> refused,
                          uint64_t last_line) {
  // Lines first, so that nothing is written for a piece that breaks the order.
  uint64_t prev = last_line_;
  for (const auto& r : records) {
    if (r.line <= prev) return OutOfOrder(r.line, prev);
    prev = r.line;
  }
  prev = last_line_;
  for (const auto& e : refused) {
    if (e.line <= prev) return OutOfOrder(e.line, prev);
    prev = e.line;
  }
  const uint64_t highest = std::max(records.empty() ? 0 : records.back().line,
                                    refused.empty() ? 0 : refused.back().line);
  if (last_line < highest) {
    return Status::InvalidArgument("last_line " + std::to_string(last_line) + " is below line " +
                                   std::to_string(highest) + " of the piece");
  }
  last_line_ = std::max(last_line_, last_line);

  // Refusals from before, merged into line order with each chunk's (`more`: the chunk's
  // refusals, of lines up to `line`). Lines the id's earlier progress covers are not
  // reported again.
  size_t next_refused = 0;
  auto report_up_to = [&](uint64_t line, std::vector<IngestError> more) {
    for (; next_refused < refused.size() && refused[next_refused].line <= line; ++next_refused) {
      if (refused[next_refused].line > done_) more.push_back(std::move(refused[next_refused]));
    }
    std::stable_sort(more.begin(), more.end(),
                     [](const auto& a, const auto& b) { return a.line < b.line; });
    for (const auto& e : more) Report(e);
  };

  size_t i = 0;
  while (i < records.size() && records[i].line <= done_) ++i, ++summary_.skipped;
  while (i < records.size()) {
    IngestRequest req;
    req.collection = collection_;
    req.ingest_id = ingest_id_;
    size_t bytes = 0;
    while (i < records.size() && req.records.size() < kv_->limits().max_batch_ops &&
           (req.records.empty() || bytes + records[i].value.size() <= kChunkBytes)) {
      bytes += records[i].value.size();
      req.records.push_back(std::move(records[i++]));
    }
    // The piece's last chunk also covers the refused lines after its last record.
    req.last_line = i == records.size() ? last_line : req.records.back().line;
    auto r = kv_->Ingest(req);
    if (!r.ok()) return FailedMidway(r.status());
    report_up_to(req.records.back().line, std::move(r->errors));
    summary_.written += r->written;
    summary_.lines_done = std::max(summary_.lines_done, req.last_line);
    if (!ingest_id_.empty()) recorded_ = std::max(recorded_, req.last_line);
  }
  report_up_to(last_line, {});
  summary_.lines_done = std::max(summary_.lines_done, last_line);
  return Status::OK();
}

Result<IngestSummary> IngestSession::Finish() {
  if (!ingest_id_.empty() && recorded_ < last_line_) {
    // Only refused or empty lines after the last chunk: recorded all the same.
    IngestRequest tail;
    tail.collection = collection_;
    tail.ingest_id = ingest_id_;
    tail.last_line = last_line_;
    auto r = kv_->Ingest(tail);
    if (!r.ok()) return FailedMidway(r.status());
    recorded_ = last_line_;
  }
  return summary_;
}

}  // namespace gojodb::kv
