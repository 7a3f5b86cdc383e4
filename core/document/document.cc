#include "core/document/document.h"

#include <simdjson.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>

#include "core/mvcc/key_codec.h"
#include "internal/json_value.h"

namespace gojodb::document {

using json = nlohmann::json;

Result<Path> ParsePath(std::string_view text) {
  Path p;
  p.text.assign(text);
  if (text.empty()) return Status::InvalidArgument("a field path cannot be empty");
  std::string seg;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\\') {
      if (i + 1 == text.size() || (text[i + 1] != '.' && text[i + 1] != '\\')) {
        return Status::InvalidArgument("field path '" + std::string(text) +
                                       "': a backslash escapes only '.' or '\\'");
      }
      seg.push_back(text[++i]);
    } else if (c == '.') {
      if (seg.empty()) {
        return Status::InvalidArgument("field path '" + std::string(text) +
                                       "' has an empty segment");
      }
      p.segments.push_back(std::move(seg));
      seg.clear();
    } else {
      seg.push_back(c);
    }
  }
  if (seg.empty()) {
    return Status::InvalidArgument("field path '" + std::string(text) + "' has an empty segment");
  }
  p.segments.push_back(std::move(seg));
  if (p.segments.size() > kMaxPathSegments) {
    return Status::InvalidArgument("field path '" + std::string(text) + "' is deeper than " +
                                   std::to_string(kMaxPathSegments) + " fields");
  }
  return p;
}

const json* Lookup(const json& doc, const Path& path) {
  const json* cur = &doc;
  for (const auto& seg : path.segments) {
    if (!cur->is_object()) return nullptr;
    auto it = cur->find(seg);
    if (it == cur->end()) return nullptr;
    cur = &*it;
  }
  return cur;
}

Result<json> ParseDocument(std::string_view bytes) {
  json doc = ParseJson(bytes);
  if (doc.is_discarded() || !doc.is_object()) {
    return Status::InvalidArgument(doc.is_discarded()
                                       ? "the value is not valid JSON, or nests deeper than " +
                                             std::to_string(kMaxJsonDepth) +
                                             " levels; this collection holds documents (JSON "
                                             "objects)"
                                       : "the value is JSON but not an object; this collection "
                                         "holds documents (JSON objects)")
        .WithDetail("reason", "NOT_A_DOCUMENT");
  }
  return doc;
}

namespace {

// A SAX handler for ParseDocumentFields: nlohmann's own lexer and parser check the whole
// input, and only the members to keep are built (by a DOM parser the events of their
// values go to). Nesting is measured as ParseJson measures it.
class FieldsSax {
 public:
  using Dom = nlohmann::detail::json_sax_dom_parser<json>;
  explicit FieldsSax(const std::vector<std::string>& keep) : keep_(keep) {}

  bool null() {
    return Scalar([](Dom& d) { return d.null(); });
  }
  bool boolean(bool v) {
    return Scalar([&](Dom& d) { return d.boolean(v); });
  }
  bool number_integer(json::number_integer_t v) {
    return Scalar([&](Dom& d) { return d.number_integer(v); });
  }
  bool number_unsigned(json::number_unsigned_t v) {
    return Scalar([&](Dom& d) { return d.number_unsigned(v); });
  }
  bool number_float(json::number_float_t v, const json::string_t& s) {
    return Scalar([&](Dom& d) { return d.number_float(v, s); });
  }
  bool string(json::string_t& v) {
    return Scalar([&](Dom& d) { return d.string(v); });
  }
  bool binary(json::binary_t&) { return false; }  // not in JSON text
  bool start_object(std::size_t n) {
    if (open_ == 0) object_ = true;
    Note(open_++);
    return !dom_ || dom_->start_object(n);
  }
  bool start_array(std::size_t n) {
    Note(open_++);
    return !dom_ || dom_->start_array(n);
  }
  bool key(json::string_t& k) {
    Note(open_);
    if (dom_) return dom_->key(k);
    if (open_ == 1 && std::binary_search(keep_.begin(), keep_.end(), k)) {
      name_ = k;
      value_ = json();
      dom_.emplace(value_, false);
    }
    return true;
  }
  bool end_object() {
    return End([](Dom& d) { return d.end_object(); });
  }
  bool end_array() {
    return End([](Dom& d) { return d.end_array(); });
  }
  template <class Exception>
  bool parse_error(std::size_t, const std::string&, const Exception&) {
    return false;
  }

  json TakeResult() { return std::move(result_); }
  bool object() const { return object_; }
  int deepest() const { return deepest_; }

 private:
  void Note(int depth) { deepest_ = std::max(deepest_, depth); }
  template <class F>
  bool Scalar(F&& f) {
    Note(open_);
    if (!dom_) return true;
    if (!f(*dom_)) return false;
    if (open_ == 1) Finish();  // a member's value that was a scalar
    return true;
  }
  template <class F>
  bool End(F&& f) {
    Note(--open_);
    if (!dom_) return true;
    if (!f(*dom_)) return false;
    if (open_ == 1) Finish();  // a member's value that was an object or array
    return true;
  }
  void Finish() {
    result_[name_] = std::move(value_);  // a repeated name: the last one, as a parse keeps
    dom_.reset();
  }

  const std::vector<std::string>& keep_;
  json result_ = json::object();
  std::optional<Dom> dom_;  // while a kept member's value is read
  std::string name_;
  json value_;
  int open_ = 0;  // containers open
  int deepest_ = 0;
  bool object_ = false;
};

// simdjson's DOM parser checks the whole text several times faster than nlohmann's
// lexer; the kept members are then copied into nlohmann values as nlohmann would have
// parsed them (non-negative integers unsigned, a repeated name's last value).
json FromSimd(simdjson::dom::element e) {
  switch (e.type()) {
    case simdjson::dom::element_type::OBJECT: {
      json o = json::object();
      for (auto field : simdjson::dom::object(e)) {
        o[std::string(field.key)] = FromSimd(field.value);
      }
      return o;
    }
    case simdjson::dom::element_type::ARRAY: {
      json a = json::array();
      for (auto v : simdjson::dom::array(e)) a.push_back(FromSimd(v));
      return a;
    }
    case simdjson::dom::element_type::STRING:
      return std::string(std::string_view(e));
    case simdjson::dom::element_type::INT64: {
      const int64_t v = int64_t(e);
      return v >= 0 ? json(static_cast<uint64_t>(v)) : json(v);
    }
    case simdjson::dom::element_type::UINT64:
      return uint64_t(e);
    case simdjson::dom::element_type::DOUBLE:
      return double(e);
    case simdjson::dom::element_type::BOOL:
      return bool(e);
    case simdjson::dom::element_type::NULL_VALUE:
      return nullptr;
  }
  return nullptr;
}

// `bytes` parsed by this thread's simdjson parser (valid until its next call here), or
// nullopt when simdjson does not accept it: bad JSON, deeper than a margin under
// kMaxJsonDepth, a number simdjson does not hold (an integer past 64 bits), or a text
// over 256 KiB (each thread's parser keeps the buffers of the largest text it has read).
std::optional<simdjson::dom::element> SimdParse(std::string_view bytes) {
  if (bytes.size() > (256u << 10)) return std::nullopt;
  struct Parser {
    Parser() : ready(p.allocate(4096, kMaxJsonDepth - 2) == simdjson::SUCCESS) {}
    simdjson::dom::parser p;
    bool ready;
    std::string buf;  // the text, with the padding simdjson reads past its end
  };
  thread_local Parser parser;
  if (!parser.ready) return std::nullopt;
  auto& buf = parser.buf;
  if (buf.size() < bytes.size() + simdjson::SIMDJSON_PADDING) {
    buf.resize(bytes.size() + simdjson::SIMDJSON_PADDING);
  }
  std::memcpy(buf.data(), bytes.data(), bytes.size());
  simdjson::dom::element root;
  if (parser.p.parse(buf.data(), bytes.size(), /*realloc_if_needed=*/false).get(root) !=
      simdjson::SUCCESS) {
    return std::nullopt;
  }
  return root;
}

// The kept members of `bytes`, or nullopt when simdjson does not accept it whole as an
// object (nlohmann then decides, and says why).
std::optional<json> FieldsBySimd(std::string_view bytes, const std::vector<std::string>& keep) {
  auto parsed = SimdParse(bytes);
  if (!parsed || !parsed->is_object()) return std::nullopt;
  const simdjson::dom::element root = *parsed;
  json out = json::object();
  for (auto field : simdjson::dom::object(root)) {
    if (std::binary_search(keep.begin(), keep.end(), field.key)) {
      out[std::string(field.key)] = FromSimd(field.value);
    }
  }
  return out;
}

}  // namespace

bool IsJsonText(std::string_view bytes) {
  return SimdParse(bytes).has_value() || json::accept(bytes);
}

Result<json> ParseDocumentFields(std::string_view bytes, const std::vector<std::string>& keep) {
  if (auto fast = FieldsBySimd(bytes, keep)) return std::move(*fast);
  FieldsSax sax(keep);
  const bool ok = json::sax_parse(bytes.begin(), bytes.end(), &sax);
  if (!ok || !sax.object() || sax.deepest() > kMaxJsonDepth) {
    return ParseDocument(bytes);  // says which, the same way
  }
  return sax.TakeResult();
}

TypeTag TagOf(const json* v) {
  if (v == nullptr) return TypeTag::kMissing;
  switch (v->type()) {
    case json::value_t::null:
      return TypeTag::kNull;
    case json::value_t::boolean:
      return v->get<bool>() ? TypeTag::kTrue : TypeTag::kFalse;
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float:
      return TypeTag::kNumber;
    case json::value_t::string:
      return TypeTag::kString;
    default:
      return TypeTag::kComposite;
  }
}

namespace {
// A double's bits, made to sort as the doubles do: positives with the sign bit set,
// negatives with every bit inverted. -0 sorts as 0.
uint64_t SortableDouble(double d) {
  if (d == 0) d = 0;  // folds -0 into +0
  uint64_t bits;
  std::memcpy(&bits, &d, sizeof(bits));
  return (bits & (uint64_t{1} << 63)) ? ~bits : bits | (uint64_t{1} << 63);
}
}  // namespace

void AppendValue(std::string* out, const json* v) {
  const TypeTag tag = TagOf(v);
  out->push_back(static_cast<char>(tag));
  switch (tag) {
    case TypeTag::kNumber:
      mvcc::AppendUint64(out, SortableDouble(v->get<double>()));
      break;
    case TypeTag::kString:
      mvcc::AppendComparableBytes(out, v->get_ref<const std::string&>());
      break;
    case TypeTag::kComposite:
      mvcc::AppendComparableBytes(out, v->dump());  // objects keep their keys sorted
      break;
    default:
      break;
  }
}

std::string EncodeValue(const json* v) {
  std::string out;
  AppendValue(&out, v);
  return out;
}

int CompareValues(const json* a, const json* b) {
  const std::string ea = EncodeValue(a), eb = EncodeValue(b);
  return ea < eb ? -1 : ea == eb ? 0 : 1;
}

std::string EncodeStringPrefix(std::string_view prefix) {
  std::string out(1, static_cast<char>(TypeTag::kString));
  mvcc::AppendComparableBytes(&out, prefix);
  out.resize(out.size() - 2);  // drop the terminator: longer strings continue from here
  return out;
}

std::optional<IndexEntry> EntryFor(const IndexSpec& index, std::string_view doc_key,
                                   const json& doc) {
  IndexEntry e;
  for (const auto& f : index.fields) {
    const json* v = Lookup(doc, f);
    if (index.unique && (v == nullptr || v->is_null())) return std::nullopt;
    AppendValue(&e.key, v);
  }
  if (index.unique) {
    e.value.assign(doc_key);
  } else {
    mvcc::AppendComparableBytes(&e.key, doc_key);
  }
  return e;
}

Result<size_t> ValuesLength(std::string_view tuple, size_t count) {
  std::string_view in = tuple;
  for (size_t i = 0; i < count; ++i) {
    if (in.empty()) return Status::DataLoss("index entry too short");
    const auto tag = static_cast<TypeTag>(in[0]);
    in.remove_prefix(1);
    if (tag == TypeTag::kNumber) {
      if (in.size() < 8) return Status::DataLoss("index entry too short");
      in.remove_prefix(8);
    } else if (tag == TypeTag::kString || tag == TypeTag::kComposite) {
      std::string ignored;
      ASSIGN_OR_RETURN(size_t n, mvcc::DecodeComparableBytes(in, &ignored));
      in.remove_prefix(n);
    } else if (static_cast<uint8_t>(tag) > static_cast<uint8_t>(TypeTag::kComposite)) {
      return Status::DataLoss("index entry has an unknown value tag");
    }
  }
  return tuple.size() - in.size();
}

Result<std::string> DocKeyOf(const IndexSpec& index, const IndexEntry& entry) {
  if (index.unique) return entry.value;
  // Skip the values, then the key's escaped bytes remain.
  ASSIGN_OR_RETURN(const size_t values, ValuesLength(entry.key, index.fields.size()));
  std::string_view in = std::string_view(entry.key).substr(values);
  std::string key;
  ASSIGN_OR_RETURN(size_t n, mvcc::DecodeComparableBytes(in, &key));
  if (n != in.size()) return Status::DataLoss("trailing bytes in index entry");
  return key;
}

// --- Schemas ---

namespace {
constexpr std::string_view kTypes[] = {"string", "number", "integer", "boolean",
                                       "object", "array",  "null"};
bool KnownType(std::string_view t) {
  for (auto k : kTypes) {
    if (k == t) return true;
  }
  return false;
}
}  // namespace

bool HasType(const json& v, std::string_view type) {
  if (type == "string") return v.is_string();
  if (type == "number") return v.is_number();
  if (type == "integer") {
    if (v.is_number_unsigned()) {
      return v.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
    }
    if (v.is_number_integer()) return true;
    if (!v.is_number_float()) return false;
    const double d = v.get<double>();
    return std::isfinite(d) && std::floor(d) == d && d >= -9.2233720368547758e18 &&
           d < 9.2233720368547758e18;
  }
  if (type == "boolean") return v.is_boolean();
  if (type == "object") return v.is_object();
  if (type == "array") return v.is_array();
  if (type == "null") return v.is_null();
  return false;
}

Result<Schema> Schema::Parse(std::string_view json_text) {
  json j = json::parse(json_text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return Status::InvalidArgument("a schema must be a JSON object");
  }
  Schema s;
  for (const auto& [k, v] : j.items()) {
    if (k != "fields" && k != "additional_fields") {
      return Status::InvalidArgument("schema: unknown key '" + k +
                                     "' (expected 'fields' and 'additional_fields')");
    }
  }
  if (j.contains("additional_fields")) {
    if (!j["additional_fields"].is_boolean()) {
      return Status::InvalidArgument("schema: 'additional_fields' must be true or false");
    }
    s.additional_fields_ = j["additional_fields"].get<bool>();
  }
  if (!j.contains("fields")) return s;
  if (!j["fields"].is_object())
    return Status::InvalidArgument("schema: 'fields' must be an object");
  for (const auto& [name, spec] : j["fields"].items()) {
    const std::string where = "schema: field '" + name + "'";
    ASSIGN_OR_RETURN(Path path, ParsePath(name));
    if (!spec.is_object()) return Status::InvalidArgument(where + " must be an object");
    Field f;
    f.path = std::move(path);
    for (const auto& [k, v] : spec.items()) {
      if (k == "type") {
        std::vector<json> types =
            v.is_array() ? std::vector<json>(v.begin(), v.end()) : std::vector<json>{v};
        if (types.empty()) return Status::InvalidArgument(where + ": 'type' lists no type");
        for (const auto& t : types) {
          if (!t.is_string() || !KnownType(t.get<std::string>())) {
            return Status::InvalidArgument(
                where + ": unknown type " + t.dump() +
                " (string, number, integer, boolean, object, array, null)");
          }
          f.types.push_back(t.get<std::string>());
        }
      } else if (k == "required") {
        if (!v.is_boolean())
          return Status::InvalidArgument(where + ": 'required' must be a boolean");
        f.required = v.get<bool>();
      } else {
        return Status::InvalidArgument(where + ": unknown key '" + k +
                                       "' (expected 'type' and 'required')");
      }
    }
    s.fields_.push_back(std::move(f));
  }
  return s;
}

Status Schema::Check(const json& doc) const {
  auto violation = [](const std::string& field, const std::string& expected,
                      const std::string& what) {
    return Status::InvalidArgument("document does not match the schema: field '" + field + "' " +
                                   what)
        .WithDetail("reason", "SCHEMA")
        .WithDetail("field", field)
        .WithDetail("expected", expected);
  };
  if (!doc.is_object()) return violation("", "object", "(the document) must be an object");
  for (const auto& f : fields_) {
    std::string expected;
    for (const auto& t : f.types) expected += (expected.empty() ? "" : "|") + t;
    const json* v = Lookup(doc, f.path);
    if (v == nullptr) {
      if (f.required)
        return violation(f.path.text, expected.empty() ? "present" : expected, "is required");
      continue;
    }
    if (f.types.empty()) continue;
    bool ok = false;
    for (const auto& t : f.types) ok = ok || HasType(*v, t);
    if (!ok) {
      return violation(f.path.text, expected,
                       "must be " + expected + ", not " + std::string(v->type_name()));
    }
  }
  if (!additional_fields_) {
    for (const auto& [k, v] : doc.items()) {
      bool named = false;
      for (const auto& f : fields_) named = named || f.path.segments.front() == k;
      if (!named) {
        return violation(k, "absent", "is not in the schema, which allows no other fields");
      }
    }
  }
  return Status::OK();
}

std::vector<std::string> Schema::TypesOf(const Path& path) const {
  for (const auto& f : fields_) {
    if (f.path == path) return f.types;
  }
  return {};
}

bool Schema::Names(const Path& path) const {
  // As Check closes the field set: by top-level field.
  for (const auto& f : fields_) {
    if (f.path.segments.front() == path.segments.front()) return true;
  }
  return false;
}

}  // namespace gojodb::document
