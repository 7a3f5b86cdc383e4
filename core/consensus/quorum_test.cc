// Quorum arithmetic, inflights and progress.
#include "core/consensus/quorum.h"

#include <gtest/gtest.h>

#include "core/consensus/inflights.h"
#include "core/consensus/progress.h"

namespace gojodb::consensus {
namespace {

MajorityConfig Maj(std::initializer_list<uint64_t> ids) {
  std::set<NodeId> s;
  for (uint64_t id : ids) s.insert(NodeId(id));
  return MajorityConfig(s);
}

AckedIndexFn Acks(std::map<uint64_t, uint64_t> m) {
  return [m](NodeId id) -> std::optional<LogIndex> {
    auto it = m.find(id.value());
    if (it == m.end()) return std::nullopt;
    return LogIndex(it->second);
  };
}

TEST(QuorumTest, MajorityCommittedIndex) {
  EXPECT_EQ(Maj({}).CommittedIndex(Acks({})), LogIndex::Max());
  EXPECT_EQ(Maj({1}).CommittedIndex(Acks({{1, 5}})), LogIndex(5));
  EXPECT_EQ(Maj({1, 2, 3}).CommittedIndex(Acks({{1, 5}, {2, 3}, {3, 9}})), LogIndex(5));
  // A missing ack counts as zero.
  EXPECT_EQ(Maj({1, 2, 3}).CommittedIndex(Acks({{1, 5}})), LogIndex(0));
  EXPECT_EQ(Maj({1, 2, 3, 4}).CommittedIndex(Acks({{1, 5}, {2, 6}, {3, 7}, {4, 8}})), LogIndex(6));
  EXPECT_EQ(Maj({1, 2, 3, 4, 5}).CommittedIndex(Acks({{1, 1}, {2, 2}, {3, 3}, {4, 4}, {5, 5}})),
            LogIndex(3));
}

TEST(QuorumTest, MajorityVote) {
  EXPECT_EQ(Maj({}).Vote({}), VoteResult::kWon);
  EXPECT_EQ(Maj({1, 2, 3}).Vote({{NodeId(1), true}}), VoteResult::kPending);
  EXPECT_EQ(Maj({1, 2, 3}).Vote({{NodeId(1), true}, {NodeId(2), true}}), VoteResult::kWon);
  EXPECT_EQ(Maj({1, 2, 3}).Vote({{NodeId(1), false}, {NodeId(2), false}}), VoteResult::kLost);
  // Votes of non-members are ignored.
  EXPECT_EQ(Maj({1, 2, 3}).Vote({{NodeId(1), true}, {NodeId(7), true}}), VoteResult::kPending);
  EXPECT_EQ(Maj({1, 2, 3, 4}).Vote({{NodeId(1), true}, {NodeId(2), true}, {NodeId(3), false}}),
            VoteResult::kPending);
}

TEST(QuorumTest, JointNeedsBothMajorities) {
  JointConfig j;
  j.incoming = Maj({1, 2, 3});
  j.outgoing = Maj({3, 4, 5});
  // Incoming majority has 7, outgoing majority only 2.
  EXPECT_EQ(j.CommittedIndex(Acks({{1, 7}, {2, 7}, {3, 2}, {4, 2}, {5, 0}})), LogIndex(2));
  EXPECT_EQ(j.Vote({{NodeId(1), true}, {NodeId(2), true}}), VoteResult::kPending);
  EXPECT_EQ(j.Vote({{NodeId(1), true}, {NodeId(2), true}, {NodeId(4), false}, {NodeId(5), false}}),
            VoteResult::kLost);
  EXPECT_EQ(j.Vote({{NodeId(1), true}, {NodeId(3), true}, {NodeId(4), true}}), VoteResult::kWon);
  JointConfig simple;
  simple.incoming = Maj({1});
  EXPECT_EQ(simple.CommittedIndex(Acks({{1, 4}})), LogIndex(4));
  EXPECT_FALSE(simple.joint());
  EXPECT_TRUE(j.joint());
  EXPECT_EQ(j.Ids().size(), 5u);
}

TEST(InflightsTest, CountAndBytesLimits) {
  Inflights in(3, 0);
  in.Add(LogIndex(1), 10);
  in.Add(LogIndex(2), 10);
  EXPECT_FALSE(in.Full());
  in.Add(LogIndex(5), 10);
  EXPECT_TRUE(in.Full());
  in.FreeLE(LogIndex(2));
  EXPECT_EQ(in.Count(), 1u);
  EXPECT_FALSE(in.Full());
  in.FreeLE(LogIndex(9));
  EXPECT_EQ(in.Count(), 0u);

  Inflights by_bytes(100, 25);
  by_bytes.Add(LogIndex(1), 20);
  EXPECT_FALSE(by_bytes.Full());
  by_bytes.Add(LogIndex(2), 10);
  EXPECT_TRUE(by_bytes.Full());
  by_bytes.FreeLE(LogIndex(1));
  EXPECT_EQ(by_bytes.bytes(), 10u);
  EXPECT_FALSE(by_bytes.Full());
}

TEST(ProgressTest, ProbeSendsOneMessageUntilAcked) {
  Progress p(LogIndex(5), 10, 0, false);
  EXPECT_FALSE(p.IsPaused());
  p.SentEntries(1, 10);
  EXPECT_TRUE(p.IsPaused());
  EXPECT_TRUE(p.MaybeUpdate(LogIndex(5)));
  EXPECT_FALSE(p.IsPaused());
  EXPECT_EQ(p.next, LogIndex(6));
}

TEST(ProgressTest, ReplicateWindowAndDecr) {
  Progress p(LogIndex(1), 2, 0, false);
  p.match = LogIndex(0);
  p.BecomeReplicate();
  p.SentEntries(2, 2);  // indexes 1,2
  EXPECT_EQ(p.next, LogIndex(3));
  EXPECT_FALSE(p.IsPaused());
  p.SentEntries(1, 1);  // index 3
  EXPECT_TRUE(p.IsPaused());
  EXPECT_TRUE(p.MaybeUpdate(LogIndex(2)));
  p.inflights.FreeLE(LogIndex(2));
  EXPECT_FALSE(p.inflights.Full());
  // A rejection at or below match is stale in replicate.
  EXPECT_FALSE(p.MaybeDecrTo(LogIndex(2), LogIndex(0)));
  EXPECT_TRUE(p.MaybeDecrTo(LogIndex(3), LogIndex(0)));
  EXPECT_EQ(p.next, LogIndex(3));
}

TEST(ProgressTest, ProbeDecrUsesHintButNotBelowMatch) {
  Progress p(LogIndex(10), 8, 0, false);
  p.match = LogIndex(3);
  // Only a rejection of next-1 counts.
  EXPECT_FALSE(p.MaybeDecrTo(LogIndex(5), LogIndex(1)));
  EXPECT_TRUE(p.MaybeDecrTo(LogIndex(9), LogIndex(6)));
  EXPECT_EQ(p.next, LogIndex(7));
  EXPECT_TRUE(p.MaybeDecrTo(LogIndex(6), LogIndex(0)));
  EXPECT_EQ(p.next, LogIndex(4));  // match + 1
}

TEST(ProgressTest, SnapshotStateResumesAfterSnapshot) {
  Progress p(LogIndex(2), 8, 0, false);
  p.match = LogIndex(1);
  p.BecomeSnapshot(LogIndex(20));
  EXPECT_TRUE(p.IsPaused());
  p.BecomeProbe();
  EXPECT_EQ(p.next, LogIndex(21));
  EXPECT_FALSE(p.IsPaused());
}

}  // namespace
}  // namespace gojodb::consensus
