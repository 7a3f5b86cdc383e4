// Maps (method, raw request target) to a route with its decoded parameters. Pure and
// fuzzed: any input yields a RouteMatch or a Status (404 unknown path, 405 wrong
// method, 400 bad encoding or unknown query parameter), never a crash.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "internal/status.h"

namespace gojodb::http {

enum class Route {
  kKeyPut,
  kKeyGet,
  kKeyDelete,
  kScan,
  kBatch,
  kTxn,       // POST /v1/txn: one-shot
  kTxnBegin,  // POST /v1/txn/begin
  kTxnGet,    // POST /v1/txn/{txn}/get, and so on
  kTxnPut,
  kTxnDelete,
  kTxnScan,
  kTxnCommit,
  kTxnRollback,
  kCollectionCreate,
  kCollectionList,
  kCollectionDescribe,
  kCollectionDrop,
  kIndexCreate,  // POST /v1/collections/{c}/indexes
  kIndexDrop,    // DELETE /v1/collections/{c}/indexes/{name}
  kQuery,
  kAggregate,
  kBulk,          // POST /v1/collections/{c}/bulk
  kBulkProgress,  // GET /v1/collections/{c}/bulk/{ingest_id}
  kClusterStatus,
  kHealthz,
  kReadyz,
  kMetrics,
  kNotImplemented,  // part of the API contract, served by a later release
};

struct RouteMatch {
  Route route = Route::kHealthz;
  std::string op;                            // metric label, e.g. "put"
  std::string collection;                    // decoded
  std::string key;                           // decoded (path or key_base64)
  std::string txn;                           // an interactive transaction's id
  std::string ingest_id;                     // kBulkProgress: decoded
  std::string index;                         // kIndexDrop: decoded
  std::map<std::string, std::string> query;  // decoded
};

Result<RouteMatch> MatchRoute(std::string_view method, std::string_view target);

}  // namespace gojodb::http
