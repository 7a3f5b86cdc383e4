// Documents: JSON objects stored as row values, the paths that name their fields, the
// typed order-preserving encoding of field values that index entries and comparisons
// use, the entries of a secondary index, and collection schemas.
// See docs/architecture/documents.md. Pure functions; nothing here does I/O.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "internal/status.h"

namespace gojodb::document {

// --- Paths ---
// "address.city": the field `city` of the object in `address`. A segment is a field
// name; "\." and "\\" escape a dot and a backslash inside one.
struct Path {
  std::vector<std::string> segments;
  std::string text;  // as written
  bool operator==(const Path& o) const { return segments == o.segments; }
};
// INVALID_ARGUMENT for an empty path, an empty segment, a dangling backslash, or more
// than kMaxPathSegments segments.
inline constexpr size_t kMaxPathSegments = 32;
Result<Path> ParsePath(std::string_view text);
// The value at `path` in `doc`, or nullptr when a segment is missing or not an object.
const nlohmann::json* Lookup(const nlohmann::json& doc, const Path& path);

// Parses `bytes` as a document (a JSON object). INVALID_ARGUMENT, reason NOT_A_DOCUMENT,
// for anything else (bad JSON, or JSON that is not an object).
Result<nlohmann::json> ParseDocument(std::string_view bytes);
// The same verdict on every input, but the document holds only its top-level members
// named in `keep` (sorted, distinct): a query reads the fields it names, and builds
// nothing of the others.
Result<nlohmann::json> ParseDocumentFields(std::string_view bytes,
                                           const std::vector<std::string>& keep);

// Whether `bytes` is one JSON text, as nlohmann's json::accept judges it (which stops at
// a NUL byte and skips a leading byte order mark: callers that need the whole text
// checked look for those first). simdjson decides the common case.
bool IsJsonText(std::string_view bytes);

// --- Typed values ---
// The order of values: missing < null < false < true < numbers < strings < arrays and
// objects (by canonical JSON text); within numbers as doubles, within strings by bytes.
enum class TypeTag : uint8_t {
  kMissing = 0x00,
  kNull = 0x01,
  kFalse = 0x02,
  kTrue = 0x03,
  kNumber = 0x04,
  kString = 0x05,
  kComposite = 0x06,  // arrays and objects
};
TypeTag TagOf(const nlohmann::json* v);  // nullptr: missing
// Appends the value's self-delimiting, order-preserving encoding (nullptr: missing).
void AppendValue(std::string* out, const nlohmann::json* v);
std::string EncodeValue(const nlohmann::json* v);
// <0, 0, >0 as a orders before, with or after b (consistent with EncodeValue).
int CompareValues(const nlohmann::json* a, const nlohmann::json* b);
// The encoding of strings that start with `prefix`: every such string's encoding begins
// with it (the tag and the escaped bytes, without the terminator).
std::string EncodeStringPrefix(std::string_view prefix);

// --- Index entries ---
struct IndexSpec {
  std::string name;
  uint32_t id = 0;  // the catalog's id for the index's rows
  std::vector<Path> fields;
  bool unique = false;
};
// One index entry: its user key (under the index's id) and value.
struct IndexEntry {
  std::string key;
  std::string value;
  bool operator==(const IndexEntry& o) const { return key == o.key && value == o.value; }
  bool operator<(const IndexEntry& o) const { return key < o.key; }
};
// The document's entry in `index`, if it has one: non-unique indexes index every
// document (missing fields as missing) under Tuple(values) + Bytes(doc_key); unique
// ones key on Tuple(values) alone, value doc_key, and skip a document with a missing or
// null field.
std::optional<IndexEntry> EntryFor(const IndexSpec& index, std::string_view doc_key,
                                   const nlohmann::json& doc);
// The length of the first `count` values of a tuple (Tuple(v1, …) as an entry's key
// begins); DATA_LOSS when it holds fewer or an unknown tag.
Result<size_t> ValuesLength(std::string_view tuple, size_t count);
// The document key an entry names.
Result<std::string> DocKeyOf(const IndexSpec& index, const IndexEntry& entry);

// --- Schemas ---
// {"fields": {"path": {"type": "string"|["string","null"], "required": bool}},
//  "additional_fields": bool}. Types: string, number, integer, boolean, object, array,
// null.
class Schema {
 public:
  // INVALID_ARGUMENT naming what is wrong with the schema.
  static Result<Schema> Parse(std::string_view json_text);
  // INVALID_ARGUMENT, reason SCHEMA, details "field" and "expected", for the first
  // violation.
  Status Check(const nlohmann::json& doc) const;
  // The types the schema allows at `path` (empty: any), and whether it names the path's
  // top-level field (what additional_fields: false closes).
  std::vector<std::string> TypesOf(const Path& path) const;
  bool Names(const Path& path) const;
  bool additional_fields() const { return additional_fields_; }

 private:
  struct Field {
    Path path;
    std::vector<std::string> types;  // empty: any
    bool required = false;
  };
  std::vector<Field> fields_;
  bool additional_fields_ = true;
};
// Whether `v` is of the schema type `type`.
bool HasType(const nlohmann::json& v, std::string_view type);

}  // namespace gojodb::document
