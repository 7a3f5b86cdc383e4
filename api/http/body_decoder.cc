#include "api/http/body_decoder.h"

#include <nlohmann/json.hpp>

#include "api/http/codec.h"
#include "internal/json_value.h"

namespace gojodb::http {
namespace {

using nlohmann::json;

Result<json> ParseObject(std::string_view body) {
  if (body.empty()) return Status::InvalidArgument("request body is empty; expected a JSON object");
  auto j = ParseJson(body);
  if (j.is_discarded()) {
    return Status::InvalidArgument("request body is not valid JSON (or nests deeper than " +
                                   std::to_string(kMaxJsonDepth) + " levels)");
  }
  if (!j.is_object()) return Status::InvalidArgument("request body must be a JSON object");
  return j;
}

Status OnlyFields(const json& obj, std::initializer_list<const char*> allowed,
                  const std::string& where) {
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    bool ok = false;
    for (const char* a : allowed) ok = ok || it.key() == a;
    if (!ok)
      return Status::InvalidArgument(where + "unknown field '" + it.key().substr(0, 64) + "'");
  }
  return Status::OK();
}

Result<std::string> StringField(const json& obj, const char* name, const std::string& where) {
  const auto& v = obj.at(name);
  if (!v.is_string()) return Status::InvalidArgument(where + "'" + name + "' must be a string");
  return v.get<std::string>();
}

Result<uint64_t> VersionField(const json& v, const std::string& where) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer() && v.get<int64_t>() >= 0)
    return static_cast<uint64_t>(v.get<int64_t>());
  // Strings are accepted for clients whose JSON numbers lose 64-bit precision.
  if (v.is_string()) return ParseUint64(v.get<std::string>(), where + "if_version");
  return Status::InvalidArgument(where + "'if_version' must be a non-negative integer");
}

// Reads "<name>" (text or JSON value) or "<name>_base64" (bytes). Exactly one is allowed.
Result<std::optional<std::string>> BytesField(const json& obj, const std::string& name,
                                              bool json_values, const std::string& where) {
  const bool plain = obj.contains(name), b64 = obj.contains(name + "_base64");
  if (plain && b64) {
    return Status::InvalidArgument(where + "give '" + name + "' or '" + name +
                                   "_base64', not both");
  }
  if (b64) {
    const auto& v = obj.at(name + "_base64");
    if (!v.is_string())
      return Status::InvalidArgument(where + "'" + name + "_base64' must be a string");
    auto decoded = Base64Decode(v.get<std::string>());
    if (!decoded.ok()) return decoded.status().WithContext(where + name + "_base64");
    return std::optional<std::string>(std::move(decoded).value());
  }
  if (!plain) return std::optional<std::string>();
  const auto& v = obj.at(name);
  if (!json_values && !v.is_string()) {
    return Status::InvalidArgument(where + "'" + name + "' must be a string");
  }
  return std::optional<std::string>(StoredBytesFromJson(v));
}

// One write of a batch or transaction: {"op":"put"|"delete","collection":…,"key"|
// "key_base64":…,"value"|"value_base64":…,"if_version":V}.
Result<kv::BatchOp> DecodeOp(const json& o, const std::string& where) {
  if (!o.is_object()) return Status::InvalidArgument(where + "must be an object");
  RETURN_IF_ERROR(OnlyFields(
      o, {"op", "collection", "key", "key_base64", "value", "value_base64", "if_version"}, where));
  kv::BatchOp op;
  if (!o.contains("op")) return Status::InvalidArgument(where + "'op' is required");
  ASSIGN_OR_RETURN(std::string kind, StringField(o, "op", where));
  if (kind == "put")
    op.kind = kv::BatchOp::Kind::kPut;
  else if (kind == "delete")
    op.kind = kv::BatchOp::Kind::kDelete;
  else
    return Status::InvalidArgument(where + "'op' must be \"put\" or \"delete\"");
  if (o.contains("collection")) {
    ASSIGN_OR_RETURN(op.collection, StringField(o, "collection", where));
  }
  ASSIGN_OR_RETURN(auto key, BytesField(o, "key", false, where));
  if (!key) return Status::InvalidArgument(where + "'key' is required");
  op.key = std::move(*key);
  ASSIGN_OR_RETURN(auto value, BytesField(o, "value", true, where));
  if (op.kind == kv::BatchOp::Kind::kPut) {
    if (!value) return Status::InvalidArgument(where + "a put needs 'value' or 'value_base64'");
    op.value = std::move(*value);
  } else if (value) {
    return Status::InvalidArgument(where + "a delete takes no value");
  }
  if (o.contains("if_version")) {
    ASSIGN_OR_RETURN(op.if_version, VersionField(o["if_version"], where));
  }
  return op;
}

// {"collection":…,"key"|"key_base64":…} and the `extra` fields the caller reads.
Result<kv::TxnRead> DecodeKeyRef(const json& o, std::initializer_list<const char*> fields,
                                 const std::string& where) {
  if (!o.is_object()) return Status::InvalidArgument(where + "must be an object");
  RETURN_IF_ERROR(OnlyFields(o, fields, where));
  kv::TxnRead r;
  if (o.contains("collection")) {
    ASSIGN_OR_RETURN(r.collection, StringField(o, "collection", where));
  }
  ASSIGN_OR_RETURN(auto key, BytesField(o, "key", false, where));
  if (!key) return Status::InvalidArgument(where + "'key' is required");
  r.key = std::move(*key);
  return r;
}

Result<const json*> OptionalArray(const json& j, const char* name) {
  if (!j.contains(name)) return static_cast<const json*>(nullptr);
  if (!j[name].is_array())
    return Status::InvalidArgument(std::string("'") + name + "' must be an array");
  return &j[name];
}

}  // namespace

Result<kv::BatchRequest> DecodeBatchBody(std::string_view body) {
  ASSIGN_OR_RETURN(json j, ParseObject(body));
  RETURN_IF_ERROR(OnlyFields(j, {"ops", "request_id"}, ""));
  kv::BatchRequest out;
  if (j.contains("request_id")) {
    ASSIGN_OR_RETURN(out.request_id, StringField(j, "request_id", ""));
  }
  if (!j.contains("ops") || !j["ops"].is_array()) {
    return Status::InvalidArgument("'ops' must be an array of operations");
  }
  const auto& ops = j["ops"];
  for (size_t i = 0; i < ops.size(); ++i) {
    ASSIGN_OR_RETURN(auto op, DecodeOp(ops[i], "ops[" + std::to_string(i) + "]: "));
    out.ops.push_back(std::move(op));
  }
  return out;
}

Result<kv::TxnRequest> DecodeTxnBody(std::string_view body) {
  ASSIGN_OR_RETURN(json j, ParseObject(body));
  RETURN_IF_ERROR(OnlyFields(j, {"reads", "ops", "conditions"}, ""));
  kv::TxnRequest out;
  ASSIGN_OR_RETURN(const json* reads, OptionalArray(j, "reads"));
  ASSIGN_OR_RETURN(const json* ops, OptionalArray(j, "ops"));
  ASSIGN_OR_RETURN(const json* conditions, OptionalArray(j, "conditions"));
  if (reads) {
    for (size_t i = 0; i < reads->size(); ++i) {
      ASSIGN_OR_RETURN(auto r, DecodeKeyRef((*reads)[i], {"collection", "key", "key_base64"},
                                            "reads[" + std::to_string(i) + "]: "));
      out.reads.push_back(std::move(r));
    }
  }
  if (ops) {
    for (size_t i = 0; i < ops->size(); ++i) {
      ASSIGN_OR_RETURN(auto op, DecodeOp((*ops)[i], "ops[" + std::to_string(i) + "]: "));
      out.ops.push_back(std::move(op));
    }
  }
  if (conditions) {
    for (size_t i = 0; i < conditions->size(); ++i) {
      const std::string where = "conditions[" + std::to_string(i) + "]: ";
      const json& o = (*conditions)[i];
      ASSIGN_OR_RETURN(auto ref, DecodeKeyRef(o,
                                              {"collection", "key", "key_base64", "version",
                                               "value", "value_base64", "exists"},
                                              where));
      kv::TxnCondition c;
      c.collection = std::move(ref.collection);
      c.key = std::move(ref.key);
      if (o.contains("version")) {
        ASSIGN_OR_RETURN(c.version, VersionField(o["version"], where));
      }
      ASSIGN_OR_RETURN(c.value, BytesField(o, "value", true, where));
      if (o.contains("exists")) {
        if (!o["exists"].is_boolean()) {
          return Status::InvalidArgument(where + "'exists' must be true or false");
        }
        c.exists = o["exists"].get<bool>();
      }
      if (int(c.version.has_value()) + int(c.value.has_value()) + int(c.exists.has_value()) != 1) {
        return Status::InvalidArgument(where + "give exactly one of version, value and exists");
      }
      out.conditions.push_back(std::move(c));
    }
  }
  if (out.reads.empty() && out.ops.empty() && out.conditions.empty()) {
    return Status::InvalidArgument("a transaction needs reads, ops or conditions");
  }
  return out;
}

Status DecodeEmptyBody(std::string_view body) {
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) return Status::OK();
  ASSIGN_OR_RETURN(json j, ParseObject(body));
  return OnlyFields(j, {}, "");
}

Result<kv::TxnRead> DecodeTxnKeyBody(std::string_view body) {
  ASSIGN_OR_RETURN(json j, ParseObject(body));
  return DecodeKeyRef(j, {"collection", "key", "key_base64"}, "");
}

Result<kv::BatchOp> DecodeTxnWriteBody(std::string_view body, bool is_delete) {
  ASSIGN_OR_RETURN(json j, ParseObject(body));
  if (j.contains("op")) return Status::InvalidArgument("unknown field 'op' (the path names it)");
  j["op"] = is_delete ? "delete" : "put";
  return DecodeOp(j, "");
}

Result<kv::ScanRequest> DecodeTxnScanBody(std::string_view body) {
  ASSIGN_OR_RETURN(json j, ParseObject(body));
  RETURN_IF_ERROR(OnlyFields(j,
                             {"collection", "start", "start_base64", "end", "end_base64", "prefix",
                              "prefix_base64", "limit", "reverse"},
                             ""));
  kv::ScanRequest s;
  if (j.contains("collection")) {
    ASSIGN_OR_RETURN(s.collection, StringField(j, "collection", ""));
  }
  ASSIGN_OR_RETURN(auto start, BytesField(j, "start", false, ""));
  ASSIGN_OR_RETURN(auto end, BytesField(j, "end", false, ""));
  ASSIGN_OR_RETURN(auto prefix, BytesField(j, "prefix", false, ""));
  s.start = start.value_or("");
  s.end = end.value_or("");
  s.prefix = prefix.value_or("");
  if (j.contains("limit")) {
    const auto& l = j["limit"];
    if (!l.is_number_unsigned() || l.get<uint64_t>() == 0 || l.get<uint64_t>() > 1'000'000) {
      return Status::InvalidArgument("'limit' must be a positive integer");
    }
    s.limit = l.get<uint64_t>();
  }
  if (j.contains("reverse")) {
    if (!j["reverse"].is_boolean())
      return Status::InvalidArgument("'reverse' must be true or false");
    s.reverse = j["reverse"].get<bool>();
  }
  return s;
}

// "consistency" ("linearizable", default, or "snapshot") and "at" (with snapshot only).
static Status ReadReadPoint(const json& j, const char* what, kv::Consistency* consistency,
                            uint64_t* at) {
  if (j.contains("consistency")) {
    ASSIGN_OR_RETURN(std::string c, StringField(j, "consistency", ""));
    if (c == "linearizable") {
      *consistency = kv::Consistency::kLinearizable;
    } else if (c == "snapshot") {
      *consistency = kv::Consistency::kSnapshot;
    } else {
      return Status::InvalidArgument("'consistency' must be \"linearizable\" or \"snapshot\"");
    }
  }
  if (j.contains("at")) {
    const auto& a = j["at"];
    if (!a.is_number_unsigned() || a.get<uint64_t>() == 0) {
      return Status::InvalidArgument("'at' must be a positive timestamp");
    }
    *at = a.get<uint64_t>();
  }
  if (*consistency == kv::Consistency::kSnapshot && *at == 0) {
    return Status::InvalidArgument(std::string("a snapshot ") + what + " needs 'at'");
  }
  if (*consistency != kv::Consistency::kSnapshot && *at != 0) {
    return Status::InvalidArgument("'at' goes with \"consistency\": \"snapshot\"");
  }
  return Status::OK();
}

namespace {

// The "filter" and "explain" fields a query and an aggregation share.
Status ReadFilter(const json& j, std::string* filter_json) {
  if (!j.contains("filter") || j["filter"].is_null()) return Status::OK();
  if (!j["filter"].is_object()) return Status::InvalidArgument("'filter' must be an object");
  *filter_json = j["filter"].dump();
  return Status::OK();
}
Status ReadExplain(const json& j, bool* explain) {
  if (!j.contains("explain")) return Status::OK();
  if (!j["explain"].is_boolean()) return Status::InvalidArgument("'explain' must be a boolean");
  *explain = j["explain"].get<bool>();
  return Status::OK();
}

}  // namespace

Result<kv::QueryRequest> DecodeQueryBody(std::string_view body) {
  ASSIGN_OR_RETURN(json j, ParseObject(body));
  RETURN_IF_ERROR(OnlyFields(
      j, {"filter", "sort", "projection", "limit", "cursor", "consistency", "at", "explain"}, ""));
  kv::QueryRequest q;
  RETURN_IF_ERROR(ReadFilter(j, &q.filter_json));
  if (j.contains("sort") && !j["sort"].is_null()) {
    const auto& sort = j["sort"];
    if (!sort.is_array()) {
      return Status::InvalidArgument(
          "'sort' must be an array of fields (\"age\", \"-age\" or {\"age\": \"desc\"})");
    }
    for (size_t i = 0; i < sort.size(); ++i) {
      const std::string where = "sort[" + std::to_string(i) + "]: ";
      const auto& s = sort[i];
      if (s.is_string()) {
        std::string f = s.get<std::string>();
        const bool desc = !f.empty() && f[0] == '-';
        if (desc) f.erase(0, 1);
        q.sort.emplace_back(std::move(f), desc);
      } else if (s.is_object() && s.size() == 1 && s.begin().value().is_string() &&
                 (s.begin().value() == "asc" || s.begin().value() == "desc")) {
        q.sort.emplace_back(s.begin().key(), s.begin().value() == "desc");
      } else {
        return Status::InvalidArgument(where +
                                       "give a field name, \"-field\", or {\"field\": "
                                       "\"asc\"|\"desc\"}");
      }
    }
  }
  if (j.contains("projection") && !j["projection"].is_null()) {
    const auto& p = j["projection"];
    if (!p.is_array()) return Status::InvalidArgument("'projection' must be an array of fields");
    for (const auto& f : p) {
      if (!f.is_string()) return Status::InvalidArgument("'projection' must hold field names");
      q.projection.push_back(f.get<std::string>());
    }
  }
  if (j.contains("limit") && !j["limit"].is_null()) {
    const auto& l = j["limit"];
    if (!l.is_number_unsigned() || l.get<uint64_t>() == 0 || l.get<uint64_t>() > 1'000'000) {
      return Status::InvalidArgument("'limit' must be a positive integer");
    }
    q.limit = l.get<uint64_t>();
  }
  if (j.contains("cursor") && !j["cursor"].is_null()) {
    ASSIGN_OR_RETURN(q.cursor, StringField(j, "cursor", ""));
  }
  RETURN_IF_ERROR(ReadReadPoint(j, "query", &q.consistency, &q.at));
  RETURN_IF_ERROR(ReadExplain(j, &q.explain));
  return q;
}

Result<kv::AggregateRequest> DecodeAggregateBody(std::string_view body) {
  ASSIGN_OR_RETURN(json j, ParseObject(body));
  RETURN_IF_ERROR(
      OnlyFields(j, {"filter", "group_by", "aggregates", "consistency", "at", "explain"}, ""));
  kv::AggregateRequest a;
  RETURN_IF_ERROR(ReadFilter(j, &a.filter_json));
  if (j.contains("group_by") && !j["group_by"].is_null()) {
    if (!j["group_by"].is_array()) {
      return Status::InvalidArgument("'group_by' must be an array of fields");
    }
    a.group_by_json = j["group_by"].dump();
  }
  if (!j.contains("aggregates") || !j["aggregates"].is_object()) {
    return Status::InvalidArgument(
        "'aggregates' is required: an object of output names to {\"count\": \"*\"}, "
        "{\"sum\": \"field\"}, …");
  }
  a.aggregates_json = j["aggregates"].dump();
  RETURN_IF_ERROR(ReadReadPoint(j, "aggregation", &a.consistency, &a.at));
  RETURN_IF_ERROR(ReadExplain(j, &a.explain));
  return a;
}

namespace {
// {"name": ..., "fields": [...], "unique": bool}
Result<kv::IndexSpec> IndexOf(const json& x, const std::string& where) {
  if (!x.is_object()) return Status::InvalidArgument(where + "must be an object");
  RETURN_IF_ERROR(OnlyFields(x, {"name", "fields", "unique"}, where));
  kv::IndexSpec s;
  if (!x.contains("name")) return Status::InvalidArgument(where + "'name' is required");
  ASSIGN_OR_RETURN(s.name, StringField(x, "name", where));
  if (!x.contains("fields") || !x["fields"].is_array() || x["fields"].empty()) {
    return Status::InvalidArgument(where + "'fields' must be a non-empty array of strings");
  }
  for (const auto& f : x["fields"]) {
    if (!f.is_string()) return Status::InvalidArgument(where + "'fields' must hold strings");
    s.fields.push_back(f.get<std::string>());
  }
  if (x.contains("unique")) {
    if (!x["unique"].is_boolean())
      return Status::InvalidArgument(where + "'unique' must be a boolean");
    s.unique = x["unique"].get<bool>();
  }
  return s;
}
}  // namespace

Result<kv::CollectionSpec> DecodeCollectionBody(std::string_view body) {
  ASSIGN_OR_RETURN(json j, ParseObject(body));
  RETURN_IF_ERROR(OnlyFields(j, {"name", "schema", "indexes"}, ""));
  kv::CollectionSpec spec;
  if (!j.contains("name")) return Status::InvalidArgument("'name' is required");
  ASSIGN_OR_RETURN(spec.name, StringField(j, "name", ""));
  if (j.contains("schema") && !j["schema"].is_null()) {
    if (!j["schema"].is_object()) return Status::InvalidArgument("'schema' must be an object");
    spec.schema_json = j["schema"].dump();
  }
  if (j.contains("indexes")) {
    const auto& idx = j["indexes"];
    if (!idx.is_array()) return Status::InvalidArgument("'indexes' must be an array");
    for (size_t i = 0; i < idx.size(); ++i) {
      ASSIGN_OR_RETURN(auto s, IndexOf(idx[i], "indexes[" + std::to_string(i) + "]: "));
      spec.indexes.push_back(std::move(s));
    }
  }
  return spec;
}

Result<kv::IndexSpec> DecodeIndexBody(std::string_view body) {
  ASSIGN_OR_RETURN(json j, ParseObject(body));
  return IndexOf(j, "");
}

}  // namespace gojodb::http
