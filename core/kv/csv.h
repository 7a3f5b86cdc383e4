// CSV bulk-load input and output (RFC 4180) for the CLI's import and export. Pure; fuzzed.
//
// The first row names the fields. Each later row becomes one JSON document whose
// top-level fields are the columns; the column named `key_field` is also the row's key.
// A quoted field is always a string. An unquoted field is typed: empty means the field
// is absent; `true`, `false` and `null` are those values; a JSON number (no leading
// zeros, no `+`) is a number; anything else is a string. With `strings_only`, every
// present field is a string. So a document of strings, numbers, booleans and nulls
// survives an export and an import unchanged (CsvField writes it that way); an object
// or array field comes back as its JSON text.
//
// Rows are numbered by the physical line they start on (the header is line 1); a
// quoted field may hold line breaks. A row that cannot be a document is an error of
// its own (INVALID_ARGUMENT with reason NOT_CSV, CSV_FIELDS or NO_KEY) and the others
// load, as with NDJSON.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/kv/ndjson.h"
#include "internal/status.h"

namespace gojodb::kv {

struct CsvOptions {
  std::string key_field = "_id";
  bool strings_only = false;
};

class CsvDecoder {
 public:
  explicit CsvDecoder(CsvOptions options);

  // Decodes the complete rows in `text` (rows may span calls) into `out`, which
  // accumulates; out->last_line is the last line of the last complete row. An error
  // only for a header that cannot be used: empty, a duplicate or empty name, or no
  // key column. After an error, nothing more is decoded.
  Status Feed(std::string_view text, NdjsonRecords* out);
  // The end of the input: a last row without a line break is decoded; an open quote
  // is that row's error.
  Status Finish(NdjsonRecords* out);

  const std::vector<std::string>& header() const { return header_; }

 private:
  // Splits complete rows off buf_ (all of it when `at_end`).
  Status Drain(bool at_end, NdjsonRecords* out);
  Status Row(uint64_t line, std::vector<std::pair<std::string, bool>> fields, NdjsonRecords* out);

  CsvOptions options_;
  std::string buf_;
  uint64_t next_line_ = 1;  // the line buf_ starts on
  std::vector<std::string> header_;
  size_t key_column_ = 0;
  Status broken_;
};

// One field as the decoder reads it back: strings quoted (doubled quotes inside),
// numbers, booleans and null bare, an object or array as its quoted JSON text.
// `json_value` is the field's JSON text.
std::string CsvField(std::string_view json_value);
// A field that is text as such (the header's names, keys): quoted when it needs to be.
std::string CsvText(std::string_view text);

}  // namespace gojodb::kv
