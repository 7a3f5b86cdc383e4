#include "api/http/http_api.h"

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>

#include "api/http/body_decoder.h"
#include "api/http/codec.h"
#include "api/http/router.h"
#include "core/document/document.h"
#include "core/kv/ingest_session.h"
#include "core/kv/ndjson.h"

namespace gojodb::http {
namespace {

using nlohmann::json;

std::string_view DetailOf(const Status& s, std::string_view name) {
  for (const auto& [k, v] : s.details()) {
    if (k == name) return v;
  }
  return {};
}

HttpResponse Json(int status, const json& j) {
  HttpResponse r;
  r.status = status;
  r.body = j.dump();
  r.body.push_back('\n');
  return r;
}

json CollectionJson(const kv::CollectionInfo& c) {
  json idx = json::array();
  for (const auto& i : c.indexes) {
    json x = {{"name", i.name},
              {"fields", i.fields},
              {"unique", i.unique},
              {"state", i.state.empty() ? kv::kIndexPublic : i.state}};
    if (i.usable_from_ts) x["usable_from_ts"] = i.usable_from_ts;
    if (!i.error.empty()) x["error"] = i.error;
    idx.push_back(std::move(x));
  }
  json out = {{"name", c.name}, {"id", c.id}, {"created_at", c.created_at}, {"indexes", idx}};
  out["schema"] =
      c.schema_json.empty() ? json(nullptr) : json::parse(c.schema_json, nullptr, false);
  return out;
}

Result<std::optional<uint64_t>> OptionalUint(const std::map<std::string, std::string>& q,
                                             const char* name) {
  auto it = q.find(name);
  if (it == q.end()) return std::optional<uint64_t>();
  ASSIGN_OR_RETURN(uint64_t v, ParseUint64(it->second, name));
  return std::optional<uint64_t>(v);
}

Result<kv::Consistency> ConsistencyParam(const std::map<std::string, std::string>& q) {
  auto it = q.find("consistency");
  const bool has_at = q.count("at") > 0;
  if (it == q.end()) return has_at ? kv::Consistency::kSnapshot : kv::Consistency::kLinearizable;
  if (it->second == "linearizable" && !has_at) return kv::Consistency::kLinearizable;
  if (it->second == "stale" && !has_at) return kv::Consistency::kStale;
  if (it->second == "snapshot") {
    if (!has_at) return Status::InvalidArgument("consistency=snapshot needs at=TS");
    return kv::Consistency::kSnapshot;
  }
  if (has_at && (it->second == "linearizable" || it->second == "stale")) {
    return Status::InvalidArgument("'at' goes with consistency=snapshot");
  }
  return Status::InvalidArgument("consistency must be linearizable, snapshot or stale");
}

Result<bool> BoolParam(const std::map<std::string, std::string>& q, const char* name) {
  auto it = q.find(name);
  if (it == q.end() || it->second == "false" || it->second == "0") return false;
  if (it->second == "true" || it->second == "1" || it->second.empty()) return true;
  return Status::InvalidArgument(std::string(name) + " must be true or false");
}

// A text key, or its _base64 form.
Result<std::string> KeyParam(const std::map<std::string, std::string>& q, const std::string& name) {
  auto plain = q.find(name);
  auto b64 = q.find(name + "_base64");
  if (plain != q.end() && b64 != q.end()) {
    return Status::InvalidArgument("give " + name + " or " + name + "_base64, not both");
  }
  if (b64 != q.end()) return Base64Decode(b64->second);
  return plain == q.end() ? std::string() : plain->second;
}

void SetKey(json& obj, std::string_view key) { SetBytesField(obj, "key", key, false); }

// Whether `v` can go into a JSON answer as its bytes: JSON text, and none of what
// nlohmann's accept() looks past (a NUL byte ends its input; a leading UTF-8 byte order
// mark is skipped).
bool IsSpliceableJson(std::string_view v) {
  if (v.empty() || v.find('\0') != std::string_view::npos) return false;
  if (v.size() >= 3 && v.substr(0, 3) == "\xEF\xBB\xBF") return false;
  return document::IsJsonText(v);
}

// `"items":[…]`: a value that is JSON text goes in as its bytes, so a document comes
// back as it was stored (its field order, its numbers' digits) without being parsed
// and printed again; any other value as a string, or base64 when not UTF-8.
void AppendItems(std::string& out, const std::vector<kv::KeyValue>& items) {
  out += "\"items\":[";
  for (size_t n = 0; n < items.size(); ++n) {
    const auto& kv = items[n];
    if (n > 0) out += ',';
    if (std::all_of(kv.key.begin(), kv.key.end(),
                    [](char c) { return c >= 0x20 && c < 0x7f && c != '"' && c != '\\'; })) {
      out += "{\"key\":\"";  // printable ASCII that needs no escape: as SetKey prints it
      out += kv.key;
      out += '"';
    } else {
      json key = json::object();
      SetKey(key, kv.key);
      const std::string k = key.dump();  // {"key":"…"}
      out.append(k, 0, k.size() - 1);
    }
    if (IsSpliceableJson(kv.value)) {
      out += ",\"value\":";
      out += kv.value;
    } else {
      json value = json::object();
      SetBytesField(value, "value", kv.value, false);
      const std::string v = value.dump();
      out += ',';
      out.append(v, 1, v.size() - 2);
    }
    out += ",\"version\":";
    out += std::to_string(kv.version);
    out += '}';
  }
  out += ']';
}

HttpResponse ItemsResponse(const std::vector<kv::KeyValue>& items, const json& rest) {
  HttpResponse r;
  r.body = "{";
  AppendItems(r.body, items);
  const std::string tail = rest.dump();  // {…}, never empty here
  if (tail.size() > 2) {
    r.body += ',';
    r.body.append(tail, 1, std::string::npos);
  } else {
    r.body += '}';
  }
  r.body.push_back('\n');
  return r;
}

HttpResponse ScanResponse(const kv::ScanResult& r) {
  json rest = {{"read_ts", r.read_ts}, {"next", nullptr}};
  if (r.next) SetBytesField(rest, "next", *r.next, false);
  return ItemsResponse(r.items, rest);
}

}  // namespace

int HttpStatusFor(const Status& s) {
  switch (s.code()) {
    case StatusCode::kOk:
      return 200;
    case StatusCode::kInvalidArgument:
    case StatusCode::kOutOfRange:
      return 400;
    case StatusCode::kUnauthenticated:
      return 401;
    case StatusCode::kPermissionDenied:
      return 403;
    case StatusCode::kNotFound:
      return 404;
    case StatusCode::kAlreadyExists:
    case StatusCode::kAborted:
    case StatusCode::kFailedPrecondition:
      return 409;
    case StatusCode::kResourceExhausted:
      return DetailOf(s, "reason") == "TOO_LARGE" ? 413 : 429;
    case StatusCode::kCancelled:
      return 499;
    case StatusCode::kUnimplemented:
      return DetailOf(s, "reason") == "METHOD_NOT_ALLOWED" ? 405 : 501;
    case StatusCode::kUnavailable:
      return 503;
    case StatusCode::kDeadlineExceeded:
      return 504;
    default:
      return 500;
  }
}

HttpResponse ErrorResponse(const Status& s) {
  json err = {{"code", std::string(StatusCodeName(s.code()))}, {"message", s.message()}};
  for (const auto& [k, v] : s.details()) {
    if (k == "allow") continue;
    auto n = ParseUint64(v, k);
    err[k] = n.ok() ? json(*n) : json(v);
  }
  HttpResponse r = Json(HttpStatusFor(s), {{"error", err}});
  if (r.status == 429 || r.status == 503) r.headers.emplace_back("Retry-After", "1");
  if (auto allow = DetailOf(s, "allow"); !allow.empty())
    r.headers.emplace_back("Allow", std::string(allow));
  return r;
}

namespace {

// A bulk load: the parsed body through one ingest session (docs/architecture/
// documents.md, "Bulk ingest").
Result<json> RunBulk(kv::KvService* kv, const std::string& collection, const std::string& ingest_id,
                     kv::NdjsonRecords parsed) {
  ASSIGN_OR_RETURN(auto session, kv::IngestSession::Open(kv, collection, ingest_id));
  RETURN_IF_ERROR(
      session.Add(std::move(parsed.records), std::move(parsed.errors), parsed.last_line));
  ASSIGN_OR_RETURN(auto sum, session.Finish());
  json errors = json::array();
  for (const auto& e : sum.errors) {
    json err = {{"line", e.line},
                {"code", std::string(StatusCodeName(e.status.code()))},
                {"message", e.status.message()}};
    for (const auto& [k, v] : e.status.details()) err[k] = v;
    errors.push_back(std::move(err));
  }
  return json{{"lines", parsed.lines},
              {"written", sum.written},
              {"skipped", sum.skipped},
              {"failed", sum.failed},
              {"errors", errors},
              {"lines_done", sum.lines_done},
              {"ingest_id", ingest_id.empty() ? json(nullptr) : json(ingest_id)}};
}

}  // namespace

HttpApi::HttpApi(kv::KvService* kv, Metrics* metrics, ClusterStatusFn cluster_status)
    : kv_(kv), metrics_(metrics), cluster_status_(std::move(cluster_status)) {}

HttpResponse HttpApi::Handle(std::string_view method, std::string_view target,
                             std::string_view body) {
  const auto start = std::chrono::steady_clock::now();
  std::string op = "unknown";
  HttpResponse resp;
  auto serve = [&]() -> Status {
    ASSIGN_OR_RETURN(RouteMatch m, MatchRoute(method, target));
    op = m.op;
    const auto& q = m.query;
    switch (m.route) {
      case Route::kHealthz:
        resp = Json(200, {{"status", "ok"}});
        return Status::OK();
      case Route::kReadyz: {
        RETURN_IF_ERROR(kv_->Ready());
        resp = Json(200, {{"status", "ready"}});
        return Status::OK();
      }
      case Route::kMetrics:
        resp.content_type = "text/plain; version=0.0.4";
        resp.body = metrics_->Render();
        return Status::OK();
      case Route::kClusterStatus:
        resp.body = cluster_status_();
        return Status::OK();
      case Route::kNotImplemented:
        return Status::Unimplemented("the " + m.op + " API is not available in this release");
      case Route::kKeyPut: {
        ASSIGN_OR_RETURN(auto if_version, OptionalUint(q, "if_version"));
        auto rid = q.find("request_id");
        ASSIGN_OR_RETURN(auto w, kv_->Put({m.collection, m.key, std::string(body), if_version,
                                           rid == q.end() ? "" : rid->second}));
        json out = {{"version", w.version}};
        SetKey(out, m.key);
        resp = Json(200, out);
        return Status::OK();
      }
      case Route::kKeyGet: {
        ASSIGN_OR_RETURN(auto consistency, ConsistencyParam(q));
        ASSIGN_OR_RETURN(auto at, OptionalUint(q, "at"));
        ASSIGN_OR_RETURN(auto g, kv_->Get({m.collection, m.key, consistency, at.value_or(0)}));
        if (!g.found) return Status::NotFound("key not found");
        resp.body = std::move(g.value);
        // accept() validates without building a document: values may be megabytes.
        resp.content_type = !resp.body.empty() && json::accept(resp.body) ? "application/json"
                            : IsValidUtf8(resp.body) ? "text/plain; charset=utf-8"
                                                     : "application/octet-stream";
        resp.headers.emplace_back("X-GojoDB-Version", std::to_string(g.version));
        return Status::OK();
      }
      case Route::kKeyDelete: {
        ASSIGN_OR_RETURN(auto if_version, OptionalUint(q, "if_version"));
        auto rid = q.find("request_id");
        ASSIGN_OR_RETURN(auto w, kv_->Delete({m.collection, m.key, if_version,
                                              rid == q.end() ? "" : rid->second}));
        resp = Json(200, {{"version", w.version}, {"existed", w.existed}});
        return Status::OK();
      }
      case Route::kScan: {
        kv::ScanRequest s;
        s.collection = m.collection;
        ASSIGN_OR_RETURN(s.start, KeyParam(q, "start"));
        ASSIGN_OR_RETURN(s.end, KeyParam(q, "end"));
        ASSIGN_OR_RETURN(s.prefix, KeyParam(q, "prefix"));
        ASSIGN_OR_RETURN(auto limit, OptionalUint(q, "limit"));
        if (limit && *limit == 0) return Status::InvalidArgument("limit must be at least 1");
        s.limit = limit.value_or(0);
        ASSIGN_OR_RETURN(s.reverse, BoolParam(q, "reverse"));
        ASSIGN_OR_RETURN(s.consistency, ConsistencyParam(q));
        ASSIGN_OR_RETURN(auto at, OptionalUint(q, "at"));
        s.at = at.value_or(0);
        ASSIGN_OR_RETURN(auto r, kv_->Scan(s));
        resp = ScanResponse(r);
        return Status::OK();
      }
      case Route::kBatch: {
        ASSIGN_OR_RETURN(auto batch, DecodeBatchBody(body));
        ASSIGN_OR_RETURN(auto w, kv_->Batch(batch));
        resp = Json(200, {{"version", w.version}, {"ops", batch.ops.size()}});
        return Status::OK();
      }
      case Route::kTxn: {
        ASSIGN_OR_RETURN(auto req, DecodeTxnBody(body));
        ASSIGN_OR_RETURN(auto r, kv_->Txn(req));
        json reads = json::array();
        for (size_t i = 0; i < r.reads.size(); ++i) {
          json item = {{"found", r.reads[i].found}};
          SetKey(item, req.reads[i].key);
          if (r.reads[i].found) {
            SetBytesField(item, "value", r.reads[i].value, true);
            item["version"] = r.reads[i].version;
          }
          reads.push_back(std::move(item));
        }
        json out = {{"start_ts", r.start_ts}, {"reads", std::move(reads)}};
        out["commit_ts"] = r.commit_ts == 0 ? json(nullptr) : json(r.commit_ts);
        resp = Json(200, out);
        return Status::OK();
      }
      case Route::kTxnBegin: {
        RETURN_IF_ERROR(DecodeEmptyBody(body));
        ASSIGN_OR_RETURN(auto h, kv_->BeginTxn());
        resp = Json(200, {{"txn", h.id}, {"start_ts", h.start_ts}});
        return Status::OK();
      }
      case Route::kTxnGet: {
        ASSIGN_OR_RETURN(auto read, DecodeTxnKeyBody(body));
        ASSIGN_OR_RETURN(auto g, kv_->TxnGet(m.txn, read));
        if (!g.found) return Status::NotFound("key not found");
        json out = {{"version", g.version}};
        SetKey(out, read.key);
        SetBytesField(out, "value", g.value, true);
        resp = Json(200, out);
        return Status::OK();
      }
      case Route::kTxnPut:
      case Route::kTxnDelete: {
        ASSIGN_OR_RETURN(auto op, DecodeTxnWriteBody(body, m.route == Route::kTxnDelete));
        RETURN_IF_ERROR(kv_->TxnWrite(m.txn, op));
        json out = {{"txn", m.txn}};
        SetKey(out, op.key);
        resp = Json(200, out);
        return Status::OK();
      }
      case Route::kTxnScan: {
        ASSIGN_OR_RETURN(auto s, DecodeTxnScanBody(body));
        ASSIGN_OR_RETURN(auto r, kv_->TxnScan(m.txn, s));
        resp = ScanResponse(r);
        return Status::OK();
      }
      case Route::kTxnCommit: {
        RETURN_IF_ERROR(DecodeEmptyBody(body));
        ASSIGN_OR_RETURN(auto ts, kv_->CommitTxn(m.txn));
        resp = Json(200, {{"commit_ts", ts}});
        return Status::OK();
      }
      case Route::kTxnRollback: {
        RETURN_IF_ERROR(DecodeEmptyBody(body));
        RETURN_IF_ERROR(kv_->RollbackTxn(m.txn));
        resp = Json(200, {{"rolled_back", m.txn}});
        return Status::OK();
      }
      case Route::kQuery: {
        ASSIGN_OR_RETURN(auto q, DecodeQueryBody(body));
        q.collection = m.collection;
        ASSIGN_OR_RETURN(auto r, kv_->Query(q));
        json rest = {{"cursor", r.cursor.empty() ? json(nullptr) : json(r.cursor)},
                     {"read_ts", r.read_ts}};
        if (q.explain) {
          json plan = json::parse(r.plan_json, nullptr, false);
          rest["plan"] = plan.is_discarded() ? json(nullptr) : std::move(plan);
        }
        resp = ItemsResponse(r.items, rest);
        return Status::OK();
      }
      case Route::kAggregate: {
        ASSIGN_OR_RETURN(auto a, DecodeAggregateBody(body));
        a.collection = m.collection;
        ASSIGN_OR_RETURN(auto r, kv_->Aggregate(a));
        json out = {{"groups", json::parse(r.groups_json, nullptr, false)}, {"read_ts", r.read_ts}};
        if (a.explain) out["plan"] = json::parse(r.plan_json, nullptr, false);
        resp = Json(200, out);
        return Status::OK();
      }
      case Route::kBulk: {
        ASSIGN_OR_RETURN(auto first, OptionalUint(q, "first_line"));
        auto kf = q.find("key_field");
        auto id = q.find("ingest_id");
        const std::string ingest_id = id == q.end() ? "" : id->second;
        if (id != q.end() && (ingest_id.empty() || ingest_id.size() > 128)) {
          return Status::InvalidArgument("ingest_id takes 1 to 128 bytes");
        }
        ASSIGN_OR_RETURN(auto parsed, kv::DecodeNdjson(body, first.value_or(1),
                                                       kf == q.end() ? "_id" : kf->second));
        ASSIGN_OR_RETURN(auto r, RunBulk(kv_, m.collection, ingest_id, std::move(parsed)));
        resp = Json(200, r);
        return Status::OK();
      }
      case Route::kBulkProgress: {
        ASSIGN_OR_RETURN(auto done, kv_->IngestProgress(m.collection, m.ingest_id));
        resp = Json(200, {{"ingest_id", m.ingest_id}, {"lines_done", done}});
        return Status::OK();
      }
      case Route::kCollectionCreate: {
        ASSIGN_OR_RETURN(auto spec, DecodeCollectionBody(body));
        ASSIGN_OR_RETURN(auto info, kv_->CreateCollection(spec));
        resp = Json(201, CollectionJson(info));
        return Status::OK();
      }
      case Route::kCollectionList: {
        ASSIGN_OR_RETURN(auto list, kv_->ListCollections());
        json arr = json::array();
        for (const auto& c : list) arr.push_back(CollectionJson(c));
        resp = Json(200, {{"collections", arr}});
        return Status::OK();
      }
      case Route::kIndexCreate: {
        ASSIGN_OR_RETURN(auto spec, DecodeIndexBody(body));
        ASSIGN_OR_RETURN(auto wait, OptionalUint(m.query, "wait_ms"));
        ASSIGN_OR_RETURN(auto info, kv_->CreateIndex(m.collection, spec,
                                                     std::chrono::milliseconds(wait.value_or(0))));
        bool building = false;
        for (const auto& i : info.indexes) {
          building |= i.name == spec.name &&
                      (i.state == kv::kIndexBuilding || i.state == kv::kIndexDeleteOnly);
        }
        // 201: built; 202: still building (the build goes on; GET the collection to follow).
        resp = Json(building ? 202 : 201, CollectionJson(info));
        return Status::OK();
      }
      case Route::kIndexDrop: {
        ASSIGN_OR_RETURN(auto info, kv_->DropIndex(m.collection, m.index));
        resp = Json(200, CollectionJson(info));
        return Status::OK();
      }
      case Route::kCollectionDescribe: {
        ASSIGN_OR_RETURN(auto info, kv_->DescribeCollection(m.collection));
        resp = Json(200, CollectionJson(info));
        return Status::OK();
      }
      case Route::kCollectionDrop: {
        RETURN_IF_ERROR(kv_->DropCollection(m.collection));
        resp = Json(200, {{"dropped", m.collection}});
        return Status::OK();
      }
    }
    return Status::Internal("unhandled route");
  };
  Status s;
  try {
    s = serve();
  } catch (const std::exception& e) {
    s = Status::Internal(std::string("unexpected error: ") + e.what());
  }
  if (!s.ok()) resp = ErrorResponse(s);
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  metrics_->RecordRequest("http", op, std::string(StatusCodeName(s.code())), secs);
  return resp;
}

}  // namespace gojodb::http
