// Fuzzes HTTP request decoding: the wire format (RequestReader, whole and in pieces),
// routing of arbitrary methods and targets, query and percent decoding, base64, the JSON
// body decoders, and the bulk-load input formats (NDJSON, CSV). Nothing may crash, hang
// or throw; successful decodes must satisfy their invariants.
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

#include "api/http/body_decoder.h"
#include "api/http/codec.h"
#include "api/http/request_reader.h"
#include "api/http/router.h"
#include "core/kv/csv.h"
#include "core/kv/ndjson.h"

using namespace gojodb::http;

namespace {

// The requests read from `in` appended in pieces of `step` bytes (0: whole). Bodies
// never pass the limit, and a refusal has a status and an error.
std::string ReadWire(std::string_view in, size_t step) {
  constexpr size_t kMaxBody = 512;
  RequestReader r({.max_body_bytes = kMaxBody, .max_header_bytes = 1024});
  std::string out;
  size_t at = 0;
  RequestReader::State s = RequestReader::State::kNeedMore;
  while (at < in.size() && s != RequestReader::State::kFailed) {
    const size_t n = step == 0 ? in.size() : std::min(step, in.size() - at);
    r.Append(in.substr(at, n));
    at += n;
    for (;;) {
      s = r.Next();
      if (s == RequestReader::State::kSendContinue) continue;
      if (s != RequestReader::State::kReady) break;
      if (r.body().size() > kMaxBody || r.method().empty()) std::abort();
      out += std::string(r.method()) + " " + std::string(r.target()) + " " +
             std::to_string(r.keep_alive()) + " " + std::string(r.body()) + "\n";
      r.NextRequest();
    }
  }
  if (s == RequestReader::State::kFailed) {
    const int code = r.error_http_status();
    if (r.error().ok() || (code != 400 && code != 413 && code != 431)) std::abort();
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  // The wire format: the same requests however the bytes arrive. (Where they stop may
  // differ: Beast checks a start line that came whole at once, one that came in pieces
  // only when its header is complete.)
  {
    const std::string whole = ReadWire(in, 0);
    if (whole != ReadWire(in, 1) || whole != ReadWire(in, 7)) std::abort();
  }
  // Layout: METHOD '\n' TARGET '\n' BODY (missing parts are empty).
  size_t a = in.find('\n');
  std::string_view method = in.substr(0, a);
  std::string_view rest = a == std::string_view::npos ? std::string_view() : in.substr(a + 1);
  size_t b = rest.find('\n');
  std::string_view target = rest.substr(0, b);
  std::string_view body = b == std::string_view::npos ? std::string_view() : rest.substr(b + 1);

  auto m = MatchRoute(method, target);
  if (m.ok() &&
      (m->route == Route::kKeyGet || m->route == Route::kKeyPut || m->route == Route::kKeyDelete) &&
      m->collection.empty()) {
    std::abort();  // a key route always names its collection
  }
  auto batch = DecodeBatchBody(body);
  if (batch.ok()) {
    for (const auto& op : batch->ops) {
      if (op.kind == gojodb::kv::BatchOp::Kind::kDelete && !op.value.empty()) std::abort();
    }
  }
  (void)DecodeCollectionBody(body);
  if (auto index = DecodeIndexBody(body); index.ok() && index->fields.empty()) std::abort();
  if (m.ok() && m->route >= Route::kTxnGet && m->route <= Route::kTxnRollback && m->txn.empty()) {
    std::abort();  // an interactive transaction's call always names it
  }
  auto txn = DecodeTxnBody(body);
  if (txn.ok()) {
    if (txn->reads.empty() && txn->ops.empty() && txn->conditions.empty()) std::abort();
    for (const auto& c : txn->conditions) {
      if (int(c.version.has_value()) + int(c.value.has_value()) + int(c.exists.has_value()) != 1) {
        std::abort();  // exactly one kind of condition
      }
    }
  }
  (void)DecodeTxnKeyBody(body);
  if (DecodeEmptyBody(body).ok() && DecodeTxnKeyBody(body).ok()) {
    std::abort();  // a body that says nothing names no key
  }
  for (bool del : {false, true}) {
    auto w = DecodeTxnWriteBody(body, del);
    if (w.ok() && del != (w->kind == gojodb::kv::BatchOp::Kind::kDelete)) std::abort();
    if (w.ok() && del && !w->value.empty()) std::abort();
  }
  auto q = DecodeQueryBody(body);
  if (q.ok() && (q->limit > 1'000'000 ||
                 (q->consistency == gojodb::kv::Consistency::kSnapshot) != (q->at != 0))) {
    std::abort();
  }
  auto agg = DecodeAggregateBody(body);
  if (agg.ok() && agg->aggregates_json.empty()) std::abort();
  // NDJSON: every line is a record or an error, numbered in order, within the body.
  if (auto nd = gojodb::kv::DecodeNdjson(body, 3, "_id"); !nd.ok()) {
    std::abort();
  } else {
    if (nd->records.size() + nd->errors.size() > nd->lines) std::abort();
    if (nd->lines > 0 && nd->last_line != 3 + nd->lines - 1) std::abort();
    uint64_t prev = 0;
    for (const auto& r : nd->records) {
      if (r.line < 3 || r.line > nd->last_line || r.line <= prev) std::abort();
      if (r.value.size() > body.size()) std::abort();
      prev = r.line;
    }
    for (const auto& e : nd->errors) {
      if (e.status.ok() || e.line < 3 || e.line > nd->last_line) std::abort();
    }
  }
  // CSV: the body whole and in pieces of 3 bytes decodes alike, with lines ascending and
  // every record a JSON object.
  {
    gojodb::kv::CsvDecoder whole({}), pieces({});
    gojodb::kv::NdjsonRecords a, b;
    auto sa = whole.Feed(body, &a);
    if (sa.ok()) sa = whole.Finish(&a);
    auto sb = gojodb::Status::OK();
    for (size_t i = 0; i < body.size() && sb.ok(); i += 3) sb = pieces.Feed(body.substr(i, 3), &b);
    if (sb.ok()) sb = pieces.Finish(&b);
    if (sa.ok() != sb.ok()) std::abort();
    if (sa.ok()) {
      if (a.records.size() != b.records.size() || a.errors.size() != b.errors.size() ||
          a.last_line != b.last_line || a.lines != b.lines) {
        std::abort();
      }
      uint64_t prev = 0;
      for (size_t i = 0; i < a.records.size(); ++i) {
        const auto& r = a.records[i];
        if (r.line != b.records[i].line || r.key != b.records[i].key ||
            r.value != b.records[i].value) {
          std::abort();
        }
        if (r.line <= prev || r.line > a.last_line || r.key.empty()) std::abort();
        if (!nlohmann::json::accept(r.value)) std::abort();
        prev = r.line;
      }
      for (size_t i = 0; i < a.errors.size(); ++i) {
        if (a.errors[i].line != b.errors[i].line || a.errors[i].line > a.last_line) std::abort();
      }
    }
  }
  auto scan = DecodeTxnScanBody(body);
  if (scan.ok() && scan->consistency != gojodb::kv::Consistency::kLinearizable) std::abort();
  if (auto dec = PercentDecode(in, true); dec.ok() && dec->size() > in.size()) std::abort();
  auto b64 = Base64Decode(in);
  if (b64.ok() && Base64Encode(*b64) != in) std::abort();  // canonical: one encoding
  if (*Base64Decode(Base64Encode(in)) != in) std::abort();
  nlohmann::json obj = nlohmann::json::object();
  SetBytesField(obj, "v", in, true);
  (void)obj.dump();  // must not throw: only valid UTF-8 is placed in JSON strings
  return 0;
}
