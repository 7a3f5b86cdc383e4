// Fuzzes the keyspace codec: decoding arbitrary bytes never crashes, and whatever
// decodes re-encodes to the same bytes (one encoding per key).
#include <cstdint>
#include <cstdlib>
#include <string>

#include "core/mvcc/key_codec.h"

using namespace gojodb::mvcc;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto d = DecodeVersionKey(in);
  if (d.ok()) {
    std::string again =
        EncodeVersionKey(EncodeRowKey(d->tenant, d->collection, d->user_key), d->ts);
    if (again != in) std::abort();
  }
  std::string out;
  auto used = DecodeComparableBytes(in, &out);
  if (used.ok()) {
    std::string enc;
    AppendComparableBytes(&enc, out);
    if (enc != in.substr(0, *used)) std::abort();
  }
  // Encoding any bytes round-trips, and order is preserved against a split of the input.
  std::string enc;
  AppendComparableBytes(&enc, in);
  std::string back;
  auto n = DecodeComparableBytes(enc, &back);
  if (!n.ok() || *n != enc.size() || back != in) std::abort();
  size_t half = size / 2;
  std::string a(in.substr(0, half)), b(in.substr(half));
  std::string ea, eb;
  AppendComparableBytes(&ea, a);
  AppendComparableBytes(&eb, b);
  if ((a < b) != (ea < eb)) std::abort();
  return 0;
}
