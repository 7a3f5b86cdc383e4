// ControllerTso with a controller in the same process: batches come from it with plain
// calls; when it fails, from the controllers over gRPC.
#include <gtest/gtest.h>

#include "cmd/storage/controller_link.h"

namespace gojodb::storage_node {
namespace {

using namespace std::chrono_literals;

TEST(ControllerTsoTest, TakesBatchesFromTheLocalControllerAndFallsBackToTheLink) {
  // No controller listens here: a batch the local source does not give fails.
  ControllerLink link({"127.0.0.1:1"}, 200ms);
  std::vector<uint32_t> asked;
  bool local_up = true;
  uint64_t next_first = 1000;
  ControllerTso tso(&link, /*batch=*/4, 60s, [&](uint32_t count) -> Result<uint64_t> {
    asked.push_back(count);
    if (!local_up) return Status::Unavailable("not the leader");
    const uint64_t first = next_first;
    next_first += 1000;
    return first;
  });
  EXPECT_EQ(tso.Next().value(), 1000u);
  EXPECT_EQ(tso.Next().value(), 1001u);
  EXPECT_EQ(asked, std::vector<uint32_t>({4}));
  // Fresh: a new batch, asked for after the call began.
  EXPECT_EQ(tso.NextFresh().value(), 2000u);
  EXPECT_EQ(tso.Next().value(), 2001u);
  // The batch runs out after four.
  EXPECT_EQ(tso.Next().value(), 2002u);
  EXPECT_EQ(tso.Next().value(), 2003u);
  EXPECT_EQ(tso.Next().value(), 3000u);
  EXPECT_EQ(asked.size(), 3u);
  // AdvancePast drops a batch not above the timestamp.
  ASSERT_TRUE(tso.AdvancePast(3500).ok());
  EXPECT_EQ(tso.Next().value(), 4000u);
  // The local controller fails: the link is asked, and its failure is the answer.
  local_up = false;
  auto r = tso.NextFresh();
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(asked.size(), 5u);
  local_up = true;
  EXPECT_EQ(tso.NextFresh().value(), 5000u);
}

}  // namespace
}  // namespace gojodb::storage_node
