#include "core/kv/ingest_session.h"

#include <gtest/gtest.h>

#include <map>

#include "core/kv/ingest_fake.h"

namespace gojodb::kv {
namespace {

// Ingests into a map, three records per chunk at most (core/kv/ingest_fake.h).
struct FakeIngest : testing::IngestFake {
  FakeIngest() : IngestFake(nullptr, 3) {}
};

std::string DetailOf(const Status& s, const std::string& name) {
  for (const auto& [k, v] : s.details()) {
    if (k == name) return v;
  }
  return "";
}

std::vector<IngestRecord> Records(std::initializer_list<std::pair<uint64_t, std::string>> lines) {
  std::vector<IngestRecord> out;
  for (const auto& [line, key] : lines) out.push_back({line, key, "{\"k\":\"" + key + "\"}"});
  return out;
}

std::vector<uint64_t> Lines(const std::vector<IngestError>& errors) {
  std::vector<uint64_t> out;
  for (const auto& e : errors) out.push_back(e.line);
  return out;
}

TEST(IngestSession, PiecesGoOutInChunksWithRefusalsInLineOrder) {
  FakeIngest kv;
  auto s = IngestSession::Open(&kv, "docs", "");
  ASSERT_TRUE(s.ok());
  // Line 2 is refused by the service in the chunk that also holds line 3; line 3 was
  // refused before (not JSON). Line 7 is blank: covered by last_line, nothing else.
  ASSERT_TRUE(s->Add(Records({{1, "a"}, {2, "bad2"}, {4, "b"}, {5, "c"}}),
                     {{3, Status::InvalidArgument("not JSON")}}, 5)
                  .ok());
  ASSERT_TRUE(s->Add(Records({{6, "d"}}), {{8, Status::InvalidArgument("no key")}}, 9).ok());
  auto sum = s->Finish();
  ASSERT_TRUE(sum.ok());
  EXPECT_EQ(kv.chunks, (std::vector<size_t>{3, 1, 1}));
  EXPECT_EQ(sum->written, 4u);
  EXPECT_EQ(sum->failed, 3u);
  EXPECT_EQ(Lines(sum->errors), (std::vector<uint64_t>{2, 3, 8}));
  EXPECT_EQ(sum->lines_done, 9u);
  EXPECT_EQ(kv.rows.size(), 4u);
  EXPECT_TRUE(kv.progress.empty()) << "no id, no progress";
}

TEST(IngestSession, LinesMustAscendAcrossPieces) {
  FakeIngest kv;
  auto s = IngestSession::Open(&kv, "docs", "");
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE(s->Add(Records({{1, "a"}, {2, "b"}}), {}, 2).ok());
  EXPECT_EQ(s->Add(Records({{2, "c"}}), {}, 2).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s->Add(Records({{4, "c"}, {3, "d"}}), {}, 4).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s->Add({}, {{1, Status::InvalidArgument("x")}}, 3).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(s->Add(Records({{5, "c"}}), {}, 4).code(), StatusCode::kInvalidArgument)
      << "last_line below a record's line";
  EXPECT_EQ(kv.rows.size(), 2u) << "a refused piece writes nothing";
  EXPECT_TRUE(s->Add(Records({{3, "c"}}), {}, 3).ok());
}

TEST(IngestSession, AnIdResumesAfterItsProgressAndRecordsTrailingLines) {
  FakeIngest kv;
  kv.fail_at = 5;
  auto s = IngestSession::Open(&kv, "docs", "load");
  ASSERT_TRUE(s.ok());
  Status st = s->Add(Records({{1, "a"}, {2, "b"}, {3, "c"}, {4, "d"}, {5, "e"}, {6, "f"}}), {}, 6);
  ASSERT_EQ(st.code(), StatusCode::kUnavailable);
  EXPECT_EQ(DetailOf(st, "lines_done"), "3");
  EXPECT_EQ(DetailOf(st, "written"), "3");
  EXPECT_EQ(kv.progress["load"], 3u);

  kv.fail_at = 0;
  kv.chunks.clear();
  auto again = IngestSession::Open(&kv, "docs", "load");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->resumed_from(), 3u);
  // The same lines again, and a trailing refused line: 1-3 skipped, 4-6 written.
  ASSERT_TRUE(again
                  ->Add(Records({{1, "a"}, {2, "b"}, {3, "c"}, {4, "d"}, {5, "e"}, {6, "f"}}),
                        {{2, Status::InvalidArgument("seen before")}}, 6)
                  .ok());
  ASSERT_TRUE(again->Add({}, {{7, Status::InvalidArgument("not JSON")}}, 8).ok());
  EXPECT_EQ(kv.progress["load"], 6u) << "trailing lines are recorded at Finish";
  auto sum = again->Finish();
  ASSERT_TRUE(sum.ok());
  EXPECT_EQ(kv.progress["load"], 8u);
  EXPECT_EQ(kv.chunks, (std::vector<size_t>{3, 0}));
  EXPECT_EQ(sum->skipped, 3u);
  EXPECT_EQ(sum->written, 3u);
  EXPECT_EQ(Lines(sum->errors), (std::vector<uint64_t>{7})) << "line 2 was done before";
  EXPECT_EQ(sum->lines_done, 8u);
}

TEST(IngestSession, ChunksStayUnderTheByteLimitAndListAtMostAThousandErrors) {
  FakeIngest kv;
  kv.limits_.max_batch_ops = 100000;
  auto s = IngestSession::Open(&kv, "docs", "");
  ASSERT_TRUE(s.ok());
  std::vector<IngestRecord> big;
  for (uint64_t i = 1; i <= 5; ++i) {
    big.push_back({i, "k" + std::to_string(i), std::string(IngestSession::kChunkBytes / 2, 'x')});
  }
  ASSERT_TRUE(s->Add(std::move(big), {}, 5).ok());
  EXPECT_EQ(kv.chunks, (std::vector<size_t>{2, 2, 1}));
  std::vector<IngestRecord> bad;
  for (uint64_t i = 6; i < 1506; ++i) bad.push_back({i, "bad" + std::to_string(i), "{}"});
  ASSERT_TRUE(s->Add(std::move(bad), {}, 1505).ok());
  EXPECT_EQ(s->summary().failed, 1500u);
  EXPECT_EQ(s->summary().errors.size(), IngestSession::kMaxErrorsListed);
  EXPECT_EQ(s->summary().errors.back().line, 1005u);
}

}  // namespace
}  // namespace gojodb::kv
