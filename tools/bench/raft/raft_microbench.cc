// Google Benchmark micro benchmarks of the pure Raft core: the CPU cost of one proposal
// through a 3-member in-memory group (propose, Ready, persist to MemoryStorage, deliver,
// commit, apply, Advance on every member), with single and batched proposals.
#include <benchmark/benchmark.h>

#include <deque>

#include "core/consensus/bootstrap.h"
#include "core/consensus/codec.h"
#include "core/consensus/raw_node.h"

namespace {

using namespace gojodb::consensus;

struct Group {
  std::vector<std::unique_ptr<MemoryStorage>> storages;
  std::vector<std::unique_ptr<RawNode>> nodes;
  std::deque<Message> wire;

  Group() {
    for (uint64_t id = 1; id <= 3; ++id) {
      auto s = std::make_unique<MemoryStorage>();
      (void)Bootstrap(s.get(), {NodeId(1), NodeId(2), NodeId(3)});
      Config c;
      c.id = NodeId(id);
      c.storage = s.get();
      c.random_seed = id;
      storages.push_back(std::move(s));
      nodes.push_back(std::move(RawNode::Create(c)).value());
    }
    Pump();  // applies the bootstrap configuration, which must precede a campaign
    (void)nodes[0]->Campaign();
    Pump();
  }
  // Runs every node's Ready and delivers messages until the group is quiet.
  void Pump() {
    bool busy = true;
    while (busy) {
      busy = false;
      for (size_t i = 0; i < nodes.size(); ++i) {
        while (nodes[i]->HasReady()) {
          busy = true;
          Ready rd = nodes[i]->GetReady();
          if (!rd.entries.empty()) (void)storages[i]->Append(rd.entries);
          if (!rd.hard_state.empty()) storages[i]->SetHardState(rd.hard_state);
          for (auto& m : rd.messages) wire.push_back(std::move(m));
          for (const auto& e : rd.committed_entries) {
            if (e.type == EntryType::kConfChange) {
              (void)nodes[i]->ApplyConfChange(*DecodeConfChange(e.data));
            }
          }
          nodes[i]->Advance();
        }
      }
      while (!wire.empty()) {
        busy = true;
        Message m = std::move(wire.front());
        wire.pop_front();
        (void)nodes[m.to.value() - 1]->Step(std::move(m));
      }
    }
  }
};

void BM_ProposeCommitApply(benchmark::State& state) {
  Group g;
  const std::string data(100, 'x');
  const int batch = static_cast<int>(state.range(0));
  for (auto _ : state) {
    for (int i = 0; i < batch; ++i) (void)g.nodes[0]->Propose(data);
    g.Pump();
    // Keep memory flat: compaction is part of the steady state.
    for (auto& s : g.storages) {
      LogIndex first = *s->FirstIndex(), last = *s->LastIndex();
      if (last.value() > first.value() + 8192) (void)s->Compact(last - 1024);
    }
  }
  state.SetItemsProcessed(state.iterations() * batch);
  // The numbers mean something only if the proposals committed everywhere.
  const auto st = g.nodes[2]->GetStatus();
  if (st.hard_state.commit.value() < static_cast<uint64_t>(state.iterations()) * batch) {
    state.SkipWithError("proposals did not commit");
  }
}
BENCHMARK(BM_ProposeCommitApply)->Arg(1)->Arg(16)->Arg(128);

}  // namespace

BENCHMARK_MAIN();
