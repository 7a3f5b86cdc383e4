// Decoders of JSON request bodies into core/kv requests. Strict: malformed JSON,
// wrong types and unknown fields are INVALID_ARGUMENT naming the offending field.
// Pure and fuzzed.
#pragma once

#include <string_view>

#include "core/kv/kv_service.h"

namespace gojodb::http {

// {"ops":[{"op":"put"|"delete","collection":…,"key"|"key_base64":…,
//          "value"|"value_base64":…,"if_version":V}], "request_id":…}
Result<kv::BatchRequest> DecodeBatchBody(std::string_view body);

// {"reads":[{"collection":…,"key"|"key_base64":…}], "ops":[as in a batch],
//  "conditions":[{"collection":…,"key"|"key_base64":…, then exactly one of
//                 "version":V | "value"|"value_base64":… | "exists":bool}]}
Result<kv::TxnRequest> DecodeTxnBody(std::string_view body);
// An interactive transaction's calls: {"collection":…,"key"|"key_base64":…} (get);
// the same with "value"|"value_base64" (put; delete takes none); the scan parameters
// {"collection","start","end","prefix" (each also _base64),"limit","reverse"}.
Result<kv::TxnRead> DecodeTxnKeyBody(std::string_view body);
// The body of a call that takes nothing (begin, commit, rollback): empty or `{}`.
Status DecodeEmptyBody(std::string_view body);
Result<kv::BatchOp> DecodeTxnWriteBody(std::string_view body, bool is_delete);
Result<kv::ScanRequest> DecodeTxnScanBody(std::string_view body);

// {"filter":{…}|null, "sort":["f", "-g", {"h":"desc"}…], "projection":["f"…],
//  "limit":N, "cursor":"…"|null, "consistency":"linearizable"|"snapshot", "at":TS,
//  "explain":bool}; the collection is the caller's. Filter and paths are checked by the
// query itself.
Result<kv::QueryRequest> DecodeQueryBody(std::string_view body);
// {"filter":{…}|null, "group_by":[paths], "aggregates":{"name":{"count":"*"}…},
//  "consistency", "at", "explain"}; the functions are checked by the aggregation.
Result<kv::AggregateRequest> DecodeAggregateBody(std::string_view body);

// {"name":…,"schema":{…},"indexes":[{"name":…,"fields":[…],"unique":false}]}
Result<kv::CollectionSpec> DecodeCollectionBody(std::string_view body);
// POST /v1/collections/{c}/indexes: {"name": ..., "fields": [...], "unique": bool}
Result<kv::IndexSpec> DecodeIndexBody(std::string_view body);

}  // namespace gojodb::http
