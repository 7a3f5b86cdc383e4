// RawNode: the Ready/Advance contract, must_sync, restart from storage, and input
// validation.
#include "core/consensus/raw_node.h"

#include <gtest/gtest.h>

#include "core/consensus/bootstrap.h"
#include "core/consensus/codec.h"
#include "core/consensus/test_network.h"

namespace gojodb::consensus {
namespace {

using testing::NewStorageWithPeers;
using testing::TestConfig;

// Persists a Ready into storage as an application would.
void Persist(MemoryStorage* s, const Ready& rd) {
  if (!rd.snapshot.empty()) {
    ASSERT_TRUE(s->ApplySnapshot(rd.snapshot).ok());
  }
  ASSERT_TRUE(s->Append(rd.entries).ok());
  if (!rd.hard_state.empty()) s->SetHardState(rd.hard_state);
}

TEST(RawNodeTest, SingleNodeProposeCommitApply) {
  auto s = NewStorageWithPeers({1});
  auto rn = std::move(RawNode::Create(TestConfig(1, 10, 1, s.get()))).value();
  ASSERT_TRUE(rn->Campaign().ok());
  ASSERT_TRUE(rn->HasReady());
  Ready rd = rn->GetReady();
  ASSERT_TRUE(rd.soft_state.has_value());
  EXPECT_EQ(rd.soft_state->state, StateType::kLeader);
  EXPECT_EQ(rd.hard_state.term, Term(1));
  EXPECT_EQ(rd.hard_state.vote, NodeId(1));
  EXPECT_TRUE(rd.must_sync);
  ASSERT_EQ(rd.entries.size(), 1u);
  Persist(s.get(), rd);
  rn->Advance();
  ASSERT_TRUE(rn->Propose("hello").ok());
  // Gather until the proposal is handed out as committed.
  std::vector<Entry> committed;
  for (int i = 0; i < 5 && rn->HasReady(); ++i) {
    Ready r = rn->GetReady();
    Persist(s.get(), r);
    committed.insert(committed.end(), r.committed_entries.begin(), r.committed_entries.end());
    rn->Advance();
  }
  ASSERT_FALSE(committed.empty());
  EXPECT_EQ(committed.back().data, "hello");
  EXPECT_EQ(rn->GetStatus().applied, LogIndex(2));
  EXPECT_FALSE(rn->HasReady());
}

TEST(RawNodeTest, CommitOnlyChangeNeedsNoSync) {
  auto s = NewStorageWithPeers({1, 2});
  auto rn = std::move(RawNode::Create(TestConfig(2, 10, 1, s.get()))).value();
  Message app;
  app.type = MessageType::kApp;
  app.from = NodeId(1);
  app.to = NodeId(2);
  app.term = Term(1);
  app.entries = {Entry{Term(1), LogIndex(1), EntryType::kNormal, "a"}};
  ASSERT_TRUE(rn->Step(app).ok());
  Ready rd = rn->GetReady();
  EXPECT_TRUE(rd.must_sync);  // new entries and a new term
  Persist(s.get(), rd);
  rn->Advance();
  Message hb;
  hb.type = MessageType::kHeartbeat;
  hb.from = NodeId(1);
  hb.to = NodeId(2);
  hb.term = Term(1);
  hb.commit = LogIndex(1);
  ASSERT_TRUE(rn->Step(hb).ok());
  Ready rd2 = rn->GetReady();
  EXPECT_EQ(rd2.hard_state.commit, LogIndex(1));
  EXPECT_FALSE(rd2.must_sync);  // only the commit index moved
  ASSERT_EQ(rd2.committed_entries.size(), 1u);
  ASSERT_EQ(rd2.messages.size(), 1u);
  rn->Advance();
}

TEST(RawNodeTest, RestartKeepsTermVoteAndLog) {
  auto s = NewStorageWithPeers({1, 2, 3});
  {
    auto rn = std::move(RawNode::Create(TestConfig(1, 10, 1, s.get()))).value();
    ASSERT_TRUE(rn->Campaign().ok());
    Ready rd = rn->GetReady();
    Persist(s.get(), rd);
    rn->Advance();
  }
  auto rn = std::move(RawNode::Create(TestConfig(1, 10, 1, s.get()))).value();
  EXPECT_EQ(rn->raft().term(), Term(1));
  EXPECT_EQ(rn->raft().vote(), NodeId(1));
  EXPECT_EQ(rn->raft().state(), StateType::kFollower);
  // Having voted for itself in term 1, it refuses anyone else in term 1.
  Message v;
  v.type = MessageType::kVote;
  v.from = NodeId(2);
  v.to = NodeId(1);
  v.term = Term(1);
  ASSERT_TRUE(rn->Step(v).ok());
  Ready rd = rn->GetReady();
  ASSERT_EQ(rd.messages.size(), 1u);
  EXPECT_TRUE(rd.messages[0].reject);
}

TEST(RawNodeTest, RejectsLocalMessagesAndUnknownResponders) {
  auto s = NewStorageWithPeers({1, 2});
  auto rn = std::move(RawNode::Create(TestConfig(1, 10, 1, s.get()))).value();
  Message hup;
  hup.type = MessageType::kHup;
  EXPECT_EQ(rn->Step(hup).code(), StatusCode::kInvalidArgument);
  Message resp;
  resp.type = MessageType::kAppResp;
  resp.from = NodeId(9);
  resp.term = Term(1);
  EXPECT_EQ(rn->Step(resp).code(), StatusCode::kNotFound);
}

TEST(RawNodeTest, InvalidConfigIsAnError) {
  MemoryStorage s;
  Config c = TestConfig(0, 10, 1, &s);
  EXPECT_FALSE(RawNode::Create(c).ok());
  c = TestConfig(1, 1, 1, &s);
  EXPECT_FALSE(RawNode::Create(c).ok());
  c = TestConfig(1, 10, 1, &s);
  c.read_only_option = ReadOnlyOption::kLeaseBased;  // needs check_quorum
  EXPECT_FALSE(RawNode::Create(c).ok());
}

TEST(RawNodeTest, BootstrapWritesMembershipIntoTheLog) {
  MemoryStorage s;
  ASSERT_TRUE(Bootstrap(&s, {NodeId(1), NodeId(2), NodeId(3)}).ok());
  EXPECT_EQ(*s.LastIndex(), LogIndex(3));
  EXPECT_FALSE(Bootstrap(&s, {NodeId(1)}).ok());
  auto rn = std::move(RawNode::Create(TestConfig(2, 10, 1, &s))).value();
  EXPECT_EQ(rn->GetStatus().conf_state.voters.size(), 3u);
  EXPECT_EQ(rn->raft().log().committed(), LogIndex(3));
  // The bootstrap entries are handed out for applying like any other.
  Ready rd = rn->GetReady();
  EXPECT_EQ(rd.committed_entries.size(), 3u);
  for (const Entry& e : rd.committed_entries) {
    EXPECT_EQ(e.type, EntryType::kConfChange);
    auto cc = DecodeConfChange(e.data);
    ASSERT_TRUE(cc.ok());
    EXPECT_TRUE(rn->ApplyConfChange(*cc).ok());
  }
  rn->Advance();
  EXPECT_EQ(rn->GetStatus().conf_state.voters.size(), 3u);
}

}  // namespace
}  // namespace gojodb::consensus
