// Order-preserving (memcomparable) key encodings for GojoDB's one ordered keyspace.
//
// Layout (docs/architecture/keyspace.md):
//   row version:  'r' tenant:u32be collection:u32be Bytes(user_key) ~commit_ts:u64be
// Bytes(x) escapes 0x00 as 0x00 0xFF and ends with 0x00 0x01, so for any byte strings
// a < b (lexicographically), Bytes(a) + s < Bytes(b) + t for all suffixes s and t, and
// every row's versions sort newest first. Pure functions, no allocation beyond output.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "internal/status.h"

namespace gojodb::mvcc {

using Timestamp = uint64_t;
inline constexpr Timestamp kMaxTimestamp = ~uint64_t{0};
// A timestamp is physical milliseconds, then kLogicalBits of counter.
inline constexpr int kLogicalBits = 18;
inline constexpr Timestamp ComposeTimestamp(uint64_t physical_ms, uint64_t logical) {
  return (physical_ms << kLogicalBits) | logical;
}
inline constexpr uint64_t PhysicalMillis(Timestamp ts) { return ts >> kLogicalBits; }

void AppendUint32(std::string* out, uint32_t v);
void AppendUint64(std::string* out, uint64_t v);
uint32_t ReadUint32(std::string_view in);  // REQUIRES: in.size() >= 4
uint64_t ReadUint64(std::string_view in);  // REQUIRES: in.size() >= 8

// Reads fields written with the Append functions above (bytes with a 4-byte length
// before them) from the front of `in`. Every read checks what is left first and fails
// (false) rather than read past the input: for decoding bytes that may be damaged.
class FieldReader {
 public:
  explicit FieldReader(std::string_view in) : in_(in) {}
  bool U8(uint8_t* v) {
    if (in_.empty()) return false;
    *v = static_cast<uint8_t>(in_[0]);
    in_.remove_prefix(1);
    return true;
  }
  bool U32(uint32_t* v) {
    if (in_.size() < 4) return false;
    *v = ReadUint32(in_);
    in_.remove_prefix(4);
    return true;
  }
  bool U64(uint64_t* v) {
    if (in_.size() < 8) return false;
    *v = ReadUint64(in_);
    in_.remove_prefix(8);
    return true;
  }
  bool Bytes(std::string_view* b) {
    uint32_t n;
    if (in_.size() < 4 || (n = ReadUint32(in_), in_.size() - 4 < n)) return false;
    *b = in_.substr(4, n);
    in_.remove_prefix(4 + size_t{n});
    return true;
  }
  bool Bytes(std::string* b) {
    std::string_view v;
    if (!Bytes(&v)) return false;
    b->assign(v);
    return true;
  }
  bool done() const { return in_.empty(); }
  size_t remaining() const { return in_.size(); }

 private:
  std::string_view in_;
};

// Appends the escaped, terminated encoding of `bytes`.
void AppendComparableBytes(std::string* out, std::string_view bytes);
// Decodes one escaped string from the front of `in`; returns the bytes consumed.
Result<size_t> DecodeComparableBytes(std::string_view in, std::string* out);

inline constexpr char kRowTag = 'r';

// All versions of all rows of one collection share this prefix.
std::string CollectionPrefix(uint32_t tenant, uint32_t collection);
// The row key (no timestamp): CollectionPrefix + Bytes(user_key).
std::string EncodeRowKey(uint32_t tenant, uint32_t collection, std::string_view user_key);
// row_key + ~ts: the key of one version.
std::string EncodeVersionKey(std::string_view row_key, Timestamp ts);

struct DecodedVersionKey {
  uint32_t tenant = 0;
  uint32_t collection = 0;
  std::string user_key;
  std::string_view row_key;  // points into the decoded input
  Timestamp ts = 0;
};
// Fails with DATA_LOSS on malformed input (never crashes).
Result<DecodedVersionKey> DecodeVersionKey(std::string_view key);

// The smallest string greater than every string with prefix p; empty if none exists
// (p is all 0xFF).
std::string PrefixSuccessor(std::string_view p);

}  // namespace gojodb::mvcc
