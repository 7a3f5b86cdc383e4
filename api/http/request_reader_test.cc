#include "api/http/request_reader.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace gojodb::http {
namespace {

using State = RequestReader::State;

struct Seen {
  std::string method, target, body, content_type;
  bool keep_alive;
  bool operator==(const Seen& o) const {
    return method == o.method && target == o.target && body == o.body &&
           content_type == o.content_type && keep_alive == o.keep_alive;
  }
};

// Feeds `bytes` in pieces cut at `cuts`, collecting every request until the reader
// needs more or fails. Returns the requests and the final state.
std::pair<std::vector<Seen>, State> Read(const std::string& bytes, std::vector<size_t> cuts,
                                         RequestLimits limits = {}) {
  RequestReader r(limits);
  std::vector<Seen> out;
  cuts.push_back(bytes.size());
  size_t at = 0;
  State s = State::kNeedMore;
  for (size_t cut : cuts) {
    r.Append(std::string_view(bytes).substr(at, cut - at));
    at = cut;
    for (;;) {
      s = r.Next();
      if (s == State::kSendContinue) continue;
      if (s != State::kReady) break;
      out.push_back({std::string(r.method()), std::string(r.target()), std::string(r.body()),
                     r.header("content-type"), r.keep_alive()});
      r.NextRequest();
    }
    if (s == State::kFailed) break;
  }
  return {out, s};
}

TEST(RequestReaderTest, ReadsPipelinedRequestsInOrderWhateverTheSplit) {
  const std::string bytes =
      "GET /v1/a?x=1 HTTP/1.1\r\nHost: h\r\n\r\n"
      "POST /v1/b HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n"
      "{\"k\":1}"
      "PUT /v1/c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n"
      "DELETE /v1/d HTTP/1.1\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
  const std::vector<Seen> want = {
      {"GET", "/v1/a?x=1", "", "", true},
      {"POST", "/v1/b", "{\"k\":1}", "application/json", true},
      {"PUT", "/v1/c", "abcde", "", true},
      {"DELETE", "/v1/d", "", "", false},
  };
  auto whole = Read(bytes, {});
  EXPECT_EQ(whole.first, want);
  EXPECT_EQ(whole.second, State::kNeedMore);
  std::mt19937 rng(7);
  for (int round = 0; round < 300; ++round) {
    std::vector<size_t> cuts;
    for (size_t i = 1; i < bytes.size(); ++i) {
      if (rng() % 9 == 0) cuts.push_back(i);
    }
    auto split = Read(bytes, cuts);
    ASSERT_EQ(split.first, want) << "round " << round;
  }
}

TEST(RequestReaderTest, IdleOnlyBetweenRequests) {
  RequestReader r({});
  EXPECT_TRUE(r.Idle());
  r.Append("GET / HTTP/1.1\r\n");
  EXPECT_EQ(r.Next(), State::kNeedMore);
  EXPECT_FALSE(r.Idle());
  r.Append("\r\nGET /2 HTTP/1.1\r\n\r\n");
  EXPECT_EQ(r.Next(), State::kReady);
  EXPECT_FALSE(r.Idle());
  r.NextRequest();
  EXPECT_FALSE(r.Idle());  // the second request is buffered
  EXPECT_EQ(r.Next(), State::kReady);
  EXPECT_EQ(r.target(), "/2");
  r.NextRequest();
  EXPECT_TRUE(r.Idle());
}

TEST(RequestReaderTest, HttpOneZeroClosesUnlessAskedToKeepAlive) {
  auto a = Read("GET / HTTP/1.0\r\n\r\nGET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", {});
  ASSERT_EQ(a.first.size(), 2u);
  EXPECT_FALSE(a.first[0].keep_alive);
  EXPECT_TRUE(a.first[1].keep_alive);
}

TEST(RequestReaderTest, AsksForContinueOnceWhenTheClientWaits) {
  RequestReader r({});
  r.Append("PUT /k HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n");
  EXPECT_EQ(r.Next(), State::kSendContinue);
  EXPECT_EQ(r.Next(), State::kNeedMore);
  r.Append("ab");
  EXPECT_EQ(r.Next(), State::kNeedMore);
  r.Append("c");
  ASSERT_EQ(r.Next(), State::kReady);
  EXPECT_EQ(r.body(), "abc");
  // A body that came with the header needs no invitation.
  r.NextRequest();
  r.Append("PUT /k HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nz");
  EXPECT_EQ(r.Next(), State::kReady);
}

TEST(RequestReaderTest, RefusesTooLargeBodiesBeforeReadingThem) {
  RequestReader r({.max_body_bytes = 10});
  r.Append("PUT /k HTTP/1.1\r\nContent-Length: 11\r\n\r\n");
  ASSERT_EQ(r.Next(), State::kFailed);
  EXPECT_EQ(r.error_http_status(), 413);
  EXPECT_EQ(r.error().code(), StatusCode::kResourceExhausted);
  // Chunked: refused once the chunks pass the limit.
  RequestReader c({.max_body_bytes = 10});
  c.Append("PUT /k HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n");
  EXPECT_EQ(c.Next(), State::kNeedMore);
  c.Append("6\r\nghijkl\r\n0\r\n\r\n");
  ASSERT_EQ(c.Next(), State::kFailed);
  EXPECT_EQ(c.error_http_status(), 413);
  // At the limit is fine.
  auto ok =
      Read("PUT /k HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789", {}, {.max_body_bytes = 10});
  ASSERT_EQ(ok.first.size(), 1u);
  EXPECT_EQ(ok.first[0].body, "0123456789");
}

TEST(RequestReaderTest, RefusesTooLongHeaders) {
  RequestReader r({.max_body_bytes = 100, .max_header_bytes = 1024});
  r.Append("GET /" + std::string(2000, 'k') + " HTTP/1.1\r\n\r\n");
  ASSERT_EQ(r.Next(), State::kFailed);
  EXPECT_EQ(r.error_http_status(), 431);
  EXPECT_EQ(r.error().code(), StatusCode::kInvalidArgument);
}

TEST(RequestReaderTest, MalformedRequestsFailWithBadRequest) {
  for (const std::string bad : {
           "GET\r\n\r\n",
           "GET / HTTP/2.0\r\n\r\n",
           "GET / HTTP/1.1\r\nNo colon here\r\n\r\n",
           "PUT / HTTP/1.1\r\nContent-Length: 12x\r\n\r\n",
           "PUT / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
           "PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
           "G\x01T / HTTP/1.1\r\n\r\n",
       }) {
    auto [reqs, state] = Read(bad, {});
    EXPECT_EQ(state, State::kFailed) << bad;
    EXPECT_TRUE(reqs.empty()) << bad;
  }
  RequestReader r({});
  r.Append("GET / HTTP/1.1\r\nNo colon here\r\n\r\n");
  ASSERT_EQ(r.Next(), State::kFailed);
  EXPECT_EQ(r.error_http_status(), 400);
  EXPECT_NE(r.error().message().find("malformed HTTP request"), std::string::npos);
}

TEST(RequestReaderTest, TheHeaderLimitIsTheSameWhateverTheSplit) {
  // A 600-byte line and 600 bytes of fields: over a 1,024-byte limit together, whether
  // they come at once or byte by byte.
  const std::string bytes =
      "GET /" + std::string(580, 'a') + " HTTP/1.1\r\nX-A: " + std::string(590, 'b') + "\r\n\r\n";
  const RequestLimits limits{.max_body_bytes = 100, .max_header_bytes = 1024};
  std::vector<size_t> every;
  for (size_t i = 1; i < bytes.size(); ++i) every.push_back(i);
  for (const auto& cuts : {std::vector<size_t>{}, every}) {
    auto [reqs, state] = Read(bytes, cuts, limits);
    EXPECT_TRUE(reqs.empty());
    EXPECT_EQ(state, State::kFailed) << cuts.size();
  }
}

TEST(RequestReaderTest, EndlessChunkLinesAndTrailersAreRefused) {
  const RequestLimits limits{.max_body_bytes = 1000, .max_header_bytes = 1024};
  for (const std::string tail :
       {"1;" + std::string(2000, 'x'), "0\r\nX-T: " + std::string(2000, 'y')}) {
    RequestReader r(limits);
    r.Append("PUT /k HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
    EXPECT_EQ(r.Next(), State::kNeedMore);
    for (size_t i = 0; i < tail.size(); i += 100) r.Append(tail.substr(i, 100));
    ASSERT_EQ(r.Next(), State::kFailed) << tail.substr(0, 4);
    EXPECT_EQ(r.error_http_status(), 400);
  }
}

TEST(RequestReaderTest, ATransferCodingOtherThanChunkedIsRefused) {
  for (const char* m : {"GET", "DELETE", "POST"}) {
    RequestReader r({});
    r.Append(std::string(m) +
             " /k HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n");
    ASSERT_EQ(r.Next(), State::kFailed) << m;
    EXPECT_EQ(r.error_http_status(), 400);
  }
  auto ok =
      Read("PUT /k HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n1\r\nz\r\n0\r\n\r\n", {});
  ASSERT_EQ(ok.first.size(), 1u);
}

TEST(RequestReaderTest, AWriteWithoutALengthIsRefused) {
  for (const char* m : {"POST", "PUT", "PATCH"}) {
    RequestReader r({});
    r.Append(std::string(m) + " /v1/txn/begin HTTP/1.1\r\nHost: h\r\n\r\n");
    ASSERT_EQ(r.Next(), State::kFailed) << m;
    EXPECT_EQ(r.error_http_status(), 400);
    EXPECT_NE(r.error().message().find("Content-Length"), std::string::npos);
  }
  // A GET or DELETE has no body unless it says so.
  auto ok = Read("DELETE /k HTTP/1.1\r\n\r\nGET /k HTTP/1.1\r\n\r\n", {});
  EXPECT_EQ(ok.first.size(), 2u);
}

}  // namespace
}  // namespace gojodb::http
