#include "api/http/router.h"

#include <set>
#include <vector>

#include "api/http/codec.h"

namespace gojodb::http {
namespace {

Status MethodNotAllowed(std::string_view method, std::string_view path, const char* allowed) {
  return Status::Unimplemented("method " + std::string(method.substr(0, 16)) +
                               " is not allowed on " + std::string(path.substr(0, 256)) +
                               "; allowed: " + allowed)
      .WithDetail("reason", "METHOD_NOT_ALLOWED")
      .WithDetail("allow", allowed);
}

Status CheckParams(const std::map<std::string, std::string>& q,
                   std::initializer_list<const char*> allowed) {
  for (const auto& [k, v] : q) {
    bool ok = false;
    for (const char* a : allowed) ok = ok || k == a;
    if (!ok) return Status::InvalidArgument("unknown query parameter '" + k.substr(0, 64) + "'");
  }
  return Status::OK();
}

}  // namespace

Result<RouteMatch> MatchRoute(std::string_view method, std::string_view target) {
  if (target.empty() || target[0] != '/') return Status::InvalidArgument("bad request target");
  size_t qpos = target.find('?');
  std::string_view path = target.substr(0, qpos);
  RouteMatch m;
  if (qpos != std::string_view::npos) {
    ASSIGN_OR_RETURN(m.query, ParseQuery(target.substr(qpos + 1)));
  }
  // Raw segments; decoding happens per segment so "%2F" stays inside a segment.
  std::vector<std::string_view> seg;
  for (size_t i = 1; i <= path.size();) {
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    seg.push_back(path.substr(i, j - i));
    i = j + 1;
  }
  auto is = [&](std::initializer_list<const char*> want) {
    if (seg.size() != want.size()) return false;
    size_t i = 0;
    for (const char* w : want) {
      if (*w != '*' && seg[i] != w) return false;
      ++i;
    }
    return true;
  };
  auto route = [&](Route r, const char* op) -> Result<RouteMatch> {
    m.route = r;
    m.op = op;
    return std::move(m);
  };
  const bool get = method == "GET", put = method == "PUT", post = method == "POST",
             del = method == "DELETE";

  if (is({"healthz"})) {
    if (!get) return MethodNotAllowed(method, path, "GET");
    return route(Route::kHealthz, "healthz");
  }
  if (is({"readyz"})) {
    if (!get) return MethodNotAllowed(method, path, "GET");
    return route(Route::kReadyz, "readyz");
  }
  if (is({"metrics"})) {
    if (!get) return MethodNotAllowed(method, path, "GET");
    return route(Route::kMetrics, "metrics");
  }
  if (is({"graphql"})) {
    if (!get && !post) return MethodNotAllowed(method, path, "GET, POST");
    return route(Route::kNotImplemented, "graphql");
  }
  if (seg.size() < 2 || seg[0] != "v1") {
    return Status::NotFound("no such endpoint: " + std::string(path.substr(0, 256)));
  }
  if (is({"v1", "cluster", "status"})) {
    if (!get) return MethodNotAllowed(method, path, "GET");
    RETURN_IF_ERROR(CheckParams(m.query, {}));
    return route(Route::kClusterStatus, "cluster_status");
  }
  if (is({"v1", "batch"})) {
    if (!post) return MethodNotAllowed(method, path, "POST");
    RETURN_IF_ERROR(CheckParams(m.query, {}));
    return route(Route::kBatch, "batch");
  }
  if (seg[1] == "txn") {
    if (!post) return MethodNotAllowed(method, path, "POST");
    RETURN_IF_ERROR(CheckParams(m.query, {}));
    if (is({"v1", "txn"})) return route(Route::kTxn, "txn");
    if (is({"v1", "txn", "begin"})) return route(Route::kTxnBegin, "txn_begin");
    if (seg.size() == 4 && !seg[2].empty()) {
      ASSIGN_OR_RETURN(m.txn, PercentDecode(seg[2], false));
      static constexpr std::pair<const char*, Route> kCalls[] = {
          {"get", Route::kTxnGet},       {"put", Route::kTxnPut},
          {"delete", Route::kTxnDelete}, {"scan", Route::kTxnScan},
          {"commit", Route::kTxnCommit}, {"rollback", Route::kTxnRollback}};
      for (const auto& [name, r] : kCalls) {
        if (seg[3] == name) {
          m.route = r;
          m.op = std::string("txn_") + name;
          return m;
        }
      }
    }
    return Status::NotFound("no such endpoint: " + std::string(path.substr(0, 256)));
  }
  if (seg[1] != "collections") {
    return Status::NotFound("no such endpoint: " + std::string(path.substr(0, 256)));
  }
  if (is({"v1", "collections"})) {
    RETURN_IF_ERROR(CheckParams(m.query, {}));
    if (get) return route(Route::kCollectionList, "list_collections");
    if (post) return route(Route::kCollectionCreate, "create_collection");
    return MethodNotAllowed(method, path, "GET, POST");
  }
  if (seg[2].empty()) return Status::InvalidArgument("empty collection name");
  ASSIGN_OR_RETURN(m.collection, PercentDecode(seg[2], false));
  if (seg.size() == 3) {
    RETURN_IF_ERROR(CheckParams(m.query, {}));
    if (get) return route(Route::kCollectionDescribe, "describe_collection");
    if (del) return route(Route::kCollectionDrop, "drop_collection");
    return MethodNotAllowed(method, path, "GET, DELETE");
  }
  if (is({"v1", "collections", "*", "query"})) {
    if (!post) return MethodNotAllowed(method, path, "POST");
    RETURN_IF_ERROR(CheckParams(m.query, {}));
    return route(Route::kQuery, "query");
  }
  if (is({"v1", "collections", "*", "aggregate"})) {
    if (!post) return MethodNotAllowed(method, path, "POST");
    RETURN_IF_ERROR(CheckParams(m.query, {}));
    return route(Route::kAggregate, "aggregate");
  }
  if (is({"v1", "collections", "*", "indexes"})) {
    if (!post) return MethodNotAllowed(method, path, "POST");
    RETURN_IF_ERROR(CheckParams(m.query, {"wait_ms"}));
    return route(Route::kIndexCreate, "create_index");
  }
  if (is({"v1", "collections", "*", "indexes", "*"})) {
    if (!del) return MethodNotAllowed(method, path, "DELETE");
    RETURN_IF_ERROR(CheckParams(m.query, {}));
    if (seg[4].empty()) return Status::InvalidArgument("empty index name");
    ASSIGN_OR_RETURN(m.index, PercentDecode(seg[4], false));
    return route(Route::kIndexDrop, "drop_index");
  }
  if (is({"v1", "collections", "*", "bulk"})) {
    if (!post) return MethodNotAllowed(method, path, "POST");
    RETURN_IF_ERROR(CheckParams(m.query, {"key_field", "ingest_id", "first_line"}));
    return route(Route::kBulk, "bulk");
  }
  if (is({"v1", "collections", "*", "bulk", "*"})) {
    if (!get) return MethodNotAllowed(method, path, "GET");
    RETURN_IF_ERROR(CheckParams(m.query, {}));
    if (seg[4].empty()) return Status::InvalidArgument("empty ingest id");
    ASSIGN_OR_RETURN(m.ingest_id, PercentDecode(seg[4], false));
    return route(Route::kBulkProgress, "bulk_progress");
  }
  if (seg[3] != "keys") {
    return Status::NotFound("no such endpoint: " + std::string(path.substr(0, 256)));
  }
  const bool has_b64 = m.query.count("key_base64") > 0;
  if (seg.size() == 4 && !has_b64) {
    // The collection's key listing: a scan.
    if (!get) return MethodNotAllowed(method, path, "GET");
    RETURN_IF_ERROR(
        CheckParams(m.query, {"start", "end", "prefix", "start_base64", "end_base64",
                              "prefix_base64", "limit", "reverse", "at", "consistency"}));
    return route(Route::kScan, "scan");
  }
  if (seg.size() == 4) {
    ASSIGN_OR_RETURN(m.key, Base64Decode(m.query["key_base64"]));
  } else {
    if (has_b64)
      return Status::InvalidArgument("give the key in the path or in key_base64, not both");
    // Everything after /keys/ is the key, so "a/b" may be written unescaped.
    std::string_view raw = path.substr(seg[4].data() - path.data());
    ASSIGN_OR_RETURN(m.key, PercentDecode(raw, false));
  }
  if (put) {
    RETURN_IF_ERROR(CheckParams(m.query, {"if_version", "request_id", "key_base64"}));
    return route(Route::kKeyPut, "put");
  }
  if (get) {
    RETURN_IF_ERROR(CheckParams(m.query, {"consistency", "at", "key_base64"}));
    return route(Route::kKeyGet, "get");
  }
  if (del) {
    RETURN_IF_ERROR(CheckParams(m.query, {"if_version", "request_id", "key_base64"}));
    return route(Route::kKeyDelete, "delete");
  }
  return MethodNotAllowed(method, path, "GET, PUT, DELETE");
}

}  // namespace gojodb::http
