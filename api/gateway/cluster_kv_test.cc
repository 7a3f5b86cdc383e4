// The gateway's pieces that need no cluster: validation, fingerprints, how storage
// nodes' errors are read, and what a gateway does with no controller to talk to.
#include "api/gateway/cluster_kv.h"

#include <gtest/gtest.h>

#include "core/sharding/shard_machine.h"
#include "core/sharding/store.h"
#include "internal/encoding.h"
#include "tests/integration/process.h"

namespace gojodb::gateway {
namespace {

using namespace std::chrono_literals;

std::string DetailOf(const Status& s, const std::string& name) {
  for (const auto& [k, v] : s.details()) {
    if (k == name) return v;
  }
  return "";
}

// The FNV-1a construction, written out independently: length-prefixed fields, each
// followed by 0xff.
uint64_t Fnv(const std::vector<std::string>& fields) {
  uint64_t h = 14695981039346656037ull;
  auto raw = [&](const std::string& s) {
    for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
    h = (h ^ 0xff) * 1099511628211ull;
  };
  for (const auto& f : fields) {
    raw(std::to_string(f.size()));
    raw(f);
  }
  return h;
}

TEST(Validate, KeysValuesAndRequestIds) {
  kv::Limits limits;
  limits.max_key_bytes = 8;
  limits.max_value_bytes = 16;
  limits.max_batch_ops = 2;

  EXPECT_TRUE(ValidatePut({"", "k", "v", std::nullopt, ""}, limits).ok());
  Status s = ValidatePut({"", "", "v", std::nullopt, ""}, limits);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);

  s = ValidatePut({"", "123456789", "v", std::nullopt, ""}, limits);
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(DetailOf(s, "reason"), "TOO_LARGE");

  s = ValidatePut({"", "k", std::string(17, 'x'), std::nullopt, ""}, limits);
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(DetailOf(s, "reason"), "TOO_LARGE");

  EXPECT_TRUE(ValidatePut({"", "k", "v", std::nullopt, std::string(256, 'r')}, limits).ok());
  s = ValidatePut({"", "k", "v", std::nullopt, std::string(257, 'r')}, limits);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  s = ValidateDelete({"", "k", std::nullopt, std::string(257, 'r')}, limits);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateDelete({"", "", std::nullopt, ""}, limits).code(),
            StatusCode::kInvalidArgument);

  kv::BatchRequest b;
  EXPECT_EQ(ValidateBatch(b, limits).code(), StatusCode::kInvalidArgument);  // empty
  b.ops.push_back({kv::BatchOp::Kind::kPut, "", "a", "v", std::nullopt});
  b.ops.push_back({kv::BatchOp::Kind::kDelete, "", "b", "", std::nullopt});
  EXPECT_TRUE(ValidateBatch(b, limits).ok());
  b.ops.push_back({kv::BatchOp::Kind::kPut, "", "c", "v", std::nullopt});
  EXPECT_EQ(ValidateBatch(b, limits).code(), StatusCode::kInvalidArgument);  // too many ops
  b.ops.pop_back();
  b.ops[1].key = "";
  s = ValidateBatch(b, limits);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("ops[1]"), std::string::npos) << s.ToString();
  b.ops[1] = {kv::BatchOp::Kind::kPut, "", "b", std::string(17, 'x'), std::nullopt};
  s = ValidateBatch(b, limits);
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(DetailOf(s, "reason"), "TOO_LARGE");
  // A delete's value does not count.
  b.ops[1] = {kv::BatchOp::Kind::kDelete, "", "b", std::string(17, 'x'), std::nullopt};
  EXPECT_TRUE(ValidateBatch(b, limits).ok());
}

TEST(Fingerprint, CoversEveryFieldAndIsStable) {
  const kv::PutRequest put{"", "k", "v", std::nullopt, "r1"};
  // The request id itself is not part of the fingerprint; the collection defaults.
  EXPECT_EQ(FingerprintPut(put), Fnv({"put", "default", "k", "v", "0"}));
  EXPECT_EQ(FingerprintPut(put), FingerprintPut({"default", "k", "v", std::nullopt, "r2"}));
  EXPECT_EQ(FingerprintPut({"", "k", "v", 0, ""}), Fnv({"put", "default", "k", "v", "1"}));
  EXPECT_EQ(FingerprintPut({"c", "k", "v", 41, ""}), Fnv({"put", "c", "k", "v", "42"}));
  EXPECT_NE(FingerprintPut(put), FingerprintPut({"", "k", "w", std::nullopt, ""}));
  EXPECT_NE(FingerprintPut(put), FingerprintPut({"", "k2", "v", std::nullopt, ""}));
  EXPECT_NE(FingerprintPut(put), FingerprintPut({"other", "k", "v", std::nullopt, ""}));
  EXPECT_NE(FingerprintPut(put), FingerprintPut({"", "k", "v", 0, ""}));
  // Field boundaries matter: ("ab","c") differs from ("a","bc").
  EXPECT_NE(FingerprintPut({"", "ab", "c", std::nullopt, ""}),
            FingerprintPut({"", "a", "bc", std::nullopt, ""}));

  EXPECT_EQ(FingerprintDelete({"", "k", std::nullopt, ""}), Fnv({"delete", "default", "k", "0"}));
  EXPECT_NE(FingerprintDelete({"", "k", std::nullopt, ""}), FingerprintDelete({"", "k", 3, ""}));

  kv::BatchRequest b;
  b.ops.push_back({kv::BatchOp::Kind::kPut, "", "a", "1", std::nullopt});
  b.ops.push_back({kv::BatchOp::Kind::kDelete, "c", "b", "", 5});
  EXPECT_EQ(FingerprintBatch(b),
            Fnv({"batch", "put", "default", "a", "1", "0", "delete", "c", "b", "", "6"}));
  kv::BatchRequest swapped = b;
  std::swap(swapped.ops[0], swapped.ops[1]);
  EXPECT_NE(FingerprintBatch(b), FingerprintBatch(swapped));
}

controller::ShardRecord Shard(uint64_t id, std::string start, std::string end) {
  controller::ShardRecord d;
  d.id = id;
  d.start_key = std::move(start);
  d.end_key = std::move(end);
  d.epoch = {3, 7};
  d.replicas = {{1, false}, {2, false}, {3, true}};
  d.leader = 2;
  return d;
}

TEST(ClassifyNodeError, ReadsTheStorageNodesReasons) {
  EXPECT_EQ(ClassifyNodeError(Status::OK()).verdict, NodeVerdict::kOutcome);

  // The errors exactly as the storage node's Store builds them.
  NodeAnswer a = ClassifyNodeError(sharding::NotLeaderError(5, 3));
  EXPECT_EQ(a.verdict, NodeVerdict::kNotLeader);
  EXPECT_EQ(a.leader, 3u);
  a = ClassifyNodeError(sharding::NotLeaderError(5, 0));
  EXPECT_EQ(a.verdict, NodeVerdict::kNotLeader);
  EXPECT_EQ(a.leader, 0u);

  const auto d = Shard(5, "a", "m");
  a = ClassifyNodeError(sharding::EpochNotMatchError(d));
  EXPECT_EQ(a.verdict, NodeVerdict::kEpochNotMatch);
  ASSERT_TRUE(a.descriptor.has_value());
  EXPECT_EQ(a.descriptor->id, 5u);
  EXPECT_EQ(a.descriptor->start_key, "a");
  EXPECT_EQ(a.descriptor->end_key, "m");
  EXPECT_EQ(a.descriptor->epoch, d.epoch);
  EXPECT_FALSE(a.new_descriptor.has_value());
  // With the shard on that node that now holds the key (a split's new shard).
  const auto child = Shard(6, "m", "");
  a = ClassifyNodeError(sharding::EpochNotMatchError(d, child));
  EXPECT_EQ(a.verdict, NodeVerdict::kEpochNotMatch);
  ASSERT_TRUE(a.new_descriptor.has_value());
  EXPECT_EQ(a.new_descriptor->id, 6u);
  EXPECT_EQ(a.new_descriptor->start_key, "m");
  EXPECT_EQ(a.descriptor->id, 5u);
  // A descriptor that does not decode still asks for a refresh.
  a = ClassifyNodeError(Status::Unavailable("changed")
                            .WithDetail("reason", "EPOCH_NOT_MATCH")
                            .WithDetail("descriptor", "not base64!"));
  EXPECT_EQ(a.verdict, NodeVerdict::kEpochNotMatch);
  EXPECT_FALSE(a.descriptor.has_value());

  EXPECT_EQ(ClassifyNodeError(sharding::ShardNotFoundError(5)).verdict,
            NodeVerdict::kShardNotFound);
  EXPECT_EQ(
      ClassifyNodeError(Status::Unavailable("busy").WithDetail("reason", "SERVER_BUSY")).verdict,
      NodeVerdict::kBusy);

  // gRPC's own failures: never connected, versus lost after sending.
  EXPECT_EQ(ClassifyNodeError(Status::Unavailable("failed to connect to all addresses; last "
                                                  "error: UNKNOWN: ipv4:127.0.0.1:1: Failed to "
                                                  "connect to remote host: Connection refused"))
                .verdict,
            NodeVerdict::kUnreachable);
  EXPECT_EQ(ClassifyNodeError(Status::Unavailable("Socket closed")).verdict, NodeVerdict::kUnknown);
  EXPECT_EQ(ClassifyNodeError(Status::DeadlineExceeded("Deadline Exceeded")).verdict,
            NodeVerdict::kUnknown);

  // The operations' own outcomes pass through.
  for (const Status& s :
       {Status::FailedPrecondition("version mismatch").WithDetail("current_version", "9"),
        Status::InvalidArgument("request id reused"), Status::NotFound("x"),
        Status::ResourceExhausted("disk full"), Status::OutOfRange("below the safe point")}) {
    EXPECT_EQ(ClassifyNodeError(s).verdict, NodeVerdict::kOutcome) << s.ToString();
  }
}

TEST(ClassifyNodeError, WhichWritesMayBeResent) {
  for (auto v : {NodeVerdict::kNotLeader, NodeVerdict::kEpochNotMatch, NodeVerdict::kShardNotFound,
                 NodeVerdict::kBusy, NodeVerdict::kUnreachable}) {
    EXPECT_TRUE(WriteRetryable(v, false));
    EXPECT_TRUE(WriteRetryable(v, true));
  }
  EXPECT_FALSE(WriteRetryable(NodeVerdict::kUnknown, false));
  EXPECT_TRUE(WriteRetryable(NodeVerdict::kUnknown, true));
  EXPECT_FALSE(WriteRetryable(NodeVerdict::kOutcome, true));
}

TEST(ClusterKv, RefusesBadOptions) {
  EXPECT_EQ(ClusterKv::Start({}).status().code(), StatusCode::kInvalidArgument);
  ClusterKvOptions o;
  o.controllers = {"127.0.0.1:1"};
  o.request_timeout = 0ms;
  EXPECT_EQ(ClusterKv::Start(o).status().code(), StatusCode::kInvalidArgument);
  o.request_timeout = 1000ms;
  o.ingest_part_docs = 0;
  EXPECT_EQ(ClusterKv::Start(o).status().code(), StatusCode::kInvalidArgument);
}

// No controller answers: not ready, and requests fail UNAVAILABLE at their deadline
// (checks that need no network fail at once, before any lookup).
TEST(ClusterKv, WithoutControllersAnswersUnavailableAtTheDeadline) {
  ClusterKvOptions o;
  o.controllers = {"127.0.0.1:" + std::to_string(testing::FreePort()),
                   "127.0.0.1:" + std::to_string(testing::FreePort())};
  o.request_timeout = 400ms;
  auto kv = ClusterKv::Start(o);
  ASSERT_TRUE(kv.ok()) << kv.status().ToString();
  EXPECT_EQ((*kv)->Ready().code(), StatusCode::kUnavailable);

  const auto start = std::chrono::steady_clock::now();
  auto put = (*kv)->Put({"", "k", "v", std::nullopt, ""});
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(put.status().code(), StatusCode::kUnavailable) << put.status().ToString();
  EXPECT_GE(took, 350ms);
  EXPECT_LT(took, 3s);

  EXPECT_EQ((*kv)->Put({"", "", "v", std::nullopt, ""}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ((*kv)->Get({"bad name!", "k", kv::Consistency::kLinearizable, 0}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ((*kv)->Get({"", "k", kv::Consistency::kSnapshot, 0}).status().code(),
            StatusCode::kInvalidArgument);
  kv::ScanRequest scan;
  scan.limit = 10001;
  EXPECT_EQ((*kv)->Scan(scan).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ((*kv)->DropCollection("default").code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ((*kv)->CreateCollection({"c", "{}", {}}).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ((*kv)->ListCollections().status().code(), StatusCode::kUnavailable);
}

}  // namespace
}  // namespace gojodb::gateway
