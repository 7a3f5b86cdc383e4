#include "core/mvcc/key_codec.h"

namespace gojodb::mvcc {

void AppendUint32(std::string* out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out->push_back(static_cast<char>(v >> shift));
}

void AppendUint64(std::string* out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out->push_back(static_cast<char>(v >> shift));
}

uint32_t ReadUint32(std::string_view in) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(in[i]);
  return v;
}

uint64_t ReadUint64(std::string_view in) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(in[i]);
  return v;
}

void AppendComparableBytes(std::string* out, std::string_view bytes) {
  out->reserve(out->size() + bytes.size() + 2);
  for (char c : bytes) {
    out->push_back(c);
    if (c == '\0') out->push_back('\xff');
  }
  out->push_back('\0');
  out->push_back('\x01');
}

Result<size_t> DecodeComparableBytes(std::string_view in, std::string* out) {
  out->clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '\0') {
      out->push_back(in[i]);
      continue;
    }
    if (i + 1 >= in.size()) break;
    if (in[i + 1] == '\xff') {
      out->push_back('\0');
      ++i;
    } else if (in[i + 1] == '\x01') {
      return i + 2;
    } else {
      return Status::Corruption("bad escape in encoded key");
    }
  }
  return Status::Corruption("unterminated encoded key");
}

std::string CollectionPrefix(uint32_t tenant, uint32_t collection) {
  std::string out;
  out.reserve(9);
  out.push_back(kRowTag);
  AppendUint32(&out, tenant);
  AppendUint32(&out, collection);
  return out;
}

std::string EncodeRowKey(uint32_t tenant, uint32_t collection, std::string_view user_key) {
  std::string out = CollectionPrefix(tenant, collection);
  AppendComparableBytes(&out, user_key);
  return out;
}

std::string EncodeVersionKey(std::string_view row_key, Timestamp ts) {
  std::string out;
  out.reserve(row_key.size() + 8);
  out.append(row_key);
  AppendUint64(&out, ~ts);
  return out;
}

Result<DecodedVersionKey> DecodeVersionKey(std::string_view key) {
  if (key.size() < 9 + 2 + 8 || key[0] != kRowTag) {
    return Status::Corruption("not a row version key");
  }
  DecodedVersionKey d;
  d.tenant = ReadUint32(key.substr(1));
  d.collection = ReadUint32(key.substr(5));
  ASSIGN_OR_RETURN(size_t used, DecodeComparableBytes(key.substr(9), &d.user_key));
  if (9 + used + 8 != key.size()) return Status::Corruption("bad row version key length");
  d.row_key = key.substr(0, 9 + used);
  d.ts = ~ReadUint64(key.substr(9 + used));
  return d;
}

std::string PrefixSuccessor(std::string_view p) {
  std::string s(p);
  while (!s.empty()) {
    if (static_cast<uint8_t>(s.back()) != 0xff) {
      s.back() = static_cast<char>(static_cast<uint8_t>(s.back()) + 1);
      return s;
    }
    s.pop_back();
  }
  return s;
}

}  // namespace gojodb::mvcc
