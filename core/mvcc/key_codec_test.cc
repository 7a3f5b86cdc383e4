#include "core/mvcc/key_codec.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

namespace gojodb::mvcc {
namespace {

std::string RandomBytes(std::mt19937_64& rng) {
  // Small alphabet with 0x00 and 0xFF so escapes and prefixes are common.
  static const char kAlphabet[] = {'\0', '\x01', 'a', 'b', '\xfe', '\xff'};
  std::string s(rng() % 6, '\0');
  for (auto& c : s) c = kAlphabet[rng() % sizeof(kAlphabet)];
  return s;
}

TEST(KeyCodecTest, ComparableBytesRoundTrip) {
  std::mt19937_64 rng(1);
  for (int i = 0; i < 2000; ++i) {
    std::string in = RandomBytes(rng), enc, out;
    AppendComparableBytes(&enc, in);
    enc += "trailing";
    auto used = DecodeComparableBytes(enc, &out);
    ASSERT_TRUE(used.ok());
    EXPECT_EQ(out, in);
    EXPECT_EQ(enc.substr(*used), "trailing");
  }
}

// The property the whole keyspace rests on: encoded order equals logical order, for
// (user key, timestamp) pairs ordered by key ascending then timestamp descending.
TEST(KeyCodecTest, EncodedOrderEqualsLogicalOrder) {
  std::mt19937_64 rng(20261125);
  struct Logical {
    uint32_t tenant, collection;
    std::string key;
    Timestamp ts;
  };
  std::vector<Logical> items;
  for (int i = 0; i < 3000; ++i) {
    items.push_back({static_cast<uint32_t>(rng() % 3), static_cast<uint32_t>(rng() % 3),
                     RandomBytes(rng), rng() % 4 == 0 ? kMaxTimestamp : rng() % 5});
  }
  auto logical_less = [](const Logical& a, const Logical& b) {
    if (a.tenant != b.tenant) return a.tenant < b.tenant;
    if (a.collection != b.collection) return a.collection < b.collection;
    if (a.key != b.key) return a.key < b.key;
    return a.ts > b.ts;  // newest first
  };
  auto enc = [](const Logical& l) {
    return EncodeVersionKey(EncodeRowKey(l.tenant, l.collection, l.key), l.ts);
  };
  for (int i = 0; i < 20000; ++i) {
    const auto& a = items[rng() % items.size()];
    const auto& b = items[rng() % items.size()];
    ASSERT_EQ(logical_less(a, b), enc(a) < enc(b));
  }
  std::sort(items.begin(), items.end(), logical_less);
  for (size_t i = 1; i < items.size(); ++i) ASSERT_LE(enc(items[i - 1]), enc(items[i]));
}

TEST(KeyCodecTest, VersionKeyDecodes) {
  std::string row = EncodeRowKey(7, 9, std::string("a\0b", 3));
  std::string encoded = EncodeVersionKey(row, 42);
  auto d = DecodeVersionKey(encoded);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->tenant, 7u);
  EXPECT_EQ(d->collection, 9u);
  EXPECT_EQ(d->user_key, std::string("a\0b", 3));
  EXPECT_EQ(d->ts, 42u);
  EXPECT_EQ(d->row_key, row);
}

TEST(KeyCodecTest, MalformedKeysAreErrorsNotCrashes) {
  for (std::string bad : {std::string(""), std::string("r"), std::string("x123456789012345678901"),
                          std::string("r\0\0\0\1\0\0\0\1ab", 13),
                          std::string("r\0\0\0\1\0\0\0\1a\0\x05", 12) + std::string(8, 'z')}) {
    auto d = DecodeVersionKey(bad);
    EXPECT_FALSE(d.ok());
    EXPECT_EQ(d.status().code(), StatusCode::kDataLoss);
  }
}

TEST(KeyCodecTest, PrefixSuccessor) {
  EXPECT_EQ(PrefixSuccessor("ab"), "ac");
  EXPECT_EQ(PrefixSuccessor(std::string("a\xff", 2)), "b");
  EXPECT_EQ(PrefixSuccessor(std::string("\xff\xff", 2)), "");
}

}  // namespace
}  // namespace gojodb::mvcc
