#include "core/consensus/codec.h"

#include <gtest/gtest.h>

namespace gojodb::consensus {
namespace {

Message FullMessage() {
  Message m;
  m.type = MessageType::kSnap;
  m.to = NodeId(3);
  m.from = NodeId(1);
  m.term = Term(7);
  m.log_term = Term(6);
  m.index = LogIndex(300);
  m.commit = LogIndex(299);
  m.reject = true;
  m.reject_hint = LogIndex(150);
  m.context = std::string("ctx\0x", 5);
  m.entries = {Entry{Term(6), LogIndex(301), EntryType::kNormal, "a"},
               Entry{Term(7), LogIndex(302), EntryType::kConfChange, std::string(200, 'z')}};
  Snapshot s;
  s.metadata.index = LogIndex(1ULL << 40);
  s.metadata.term = Term(5);
  s.metadata.conf_state.voters = {NodeId(1), NodeId(2)};
  s.metadata.conf_state.voters_outgoing = {NodeId(1), NodeId(2), NodeId(3)};
  s.metadata.conf_state.learners = {NodeId(9)};
  s.metadata.conf_state.learners_next = {NodeId(3)};
  s.metadata.conf_state.auto_leave = true;
  s.data = "state";
  m.snapshot = s;
  return m;
}

TEST(CodecTest, MessageRoundTrip) {
  Message m = FullMessage();
  auto got = DecodeMessage(EncodeMessage(m));
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, m);
  Message empty;
  auto got2 = DecodeMessage(EncodeMessage(empty));
  ASSERT_TRUE(got2.ok());
  EXPECT_EQ(*got2, empty);
}

TEST(CodecTest, EveryMessageTypeRoundTrips) {
  for (int t = 0; t < kNumMessageTypes; ++t) {
    Message m;
    m.type = static_cast<MessageType>(t);
    m.term = Term(UINT64_MAX);
    auto got = DecodeMessage(EncodeMessage(m));
    ASSERT_TRUE(got.ok());
    EXPECT_EQ(got->type, m.type);
    EXPECT_EQ(got->term, Term(UINT64_MAX));
  }
}

TEST(CodecTest, SmallTypesRoundTrip) {
  Entry e{Term(3), LogIndex(4), EntryType::kConfChange, "payload"};
  EXPECT_EQ(*DecodeEntry(EncodeEntry(e)), e);
  HardState hs{Term(9), NodeId(2), LogIndex(77)};
  EXPECT_EQ(*DecodeHardState(EncodeHardState(hs)), hs);
  ConfState cs = FullMessage().snapshot->metadata.conf_state;
  EXPECT_EQ(*DecodeConfState(EncodeConfState(cs)), cs);
  SnapshotMetadata md = FullMessage().snapshot->metadata;
  EXPECT_EQ(*DecodeSnapshotMetadata(EncodeSnapshotMetadata(md)), md);
  ConfChange cc;
  cc.transition = ConfChangeTransition::kJointExplicit;
  cc.changes = {{ConfChangeType::kAddNode, NodeId(4)},
                {ConfChangeType::kRemoveNode, NodeId(1)},
                {ConfChangeType::kAddLearnerNode, NodeId(5)}};
  cc.context = "why";
  EXPECT_EQ(*DecodeConfChange(EncodeConfChange(cc)), cc);
}

TEST(CodecTest, EncodingStartsWithVersion) {
  EXPECT_EQ(static_cast<uint8_t>(EncodeMessage(Message{})[0]), kCodecVersion);
  EXPECT_EQ(static_cast<uint8_t>(EncodeHardState(HardState{})[0]), kCodecVersion);
}

TEST(CodecTest, RejectsEveryTruncation) {
  std::string enc = EncodeMessage(FullMessage());
  for (size_t n = 0; n < enc.size(); ++n) {
    auto got = DecodeMessage(std::string_view(enc).substr(0, n));
    EXPECT_FALSE(got.ok()) << "prefix of " << n << " bytes decoded";
    EXPECT_EQ(got.status().code(), StatusCode::kDataLoss);
  }
}

TEST(CodecTest, RejectsBadVersionTrailingBytesAndEnums) {
  std::string enc = EncodeHardState(HardState{Term(1), NodeId(1), LogIndex(1)});
  std::string bad_version = enc;
  bad_version[0] = 2;
  EXPECT_FALSE(DecodeHardState(bad_version).ok());
  EXPECT_FALSE(DecodeHardState(enc + "x").ok());
  std::string msg = EncodeMessage(Message{});
  msg[1] = static_cast<char>(kNumMessageTypes);  // type byte out of range
  EXPECT_FALSE(DecodeMessage(msg).ok());
  Entry e;
  std::string ent = EncodeEntry(e);
  ent[3] = 9;  // entry type after version, term(0), index(0)
  EXPECT_FALSE(DecodeEntry(ent).ok());
}

TEST(CodecTest, RejectsHugeLengthsWithoutAllocating) {
  // version, type, then a count claiming 2^63 changes.
  std::string cc = {static_cast<char>(kCodecVersion), 0};
  for (int i = 0; i < 9; ++i) cc.push_back(static_cast<char>(0xFF));
  cc.push_back(0x7F);
  EXPECT_FALSE(DecodeConfChange(cc).ok());
}

}  // namespace
}  // namespace gojodb::consensus
