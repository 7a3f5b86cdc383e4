// Fuzzes the controller's replicated-state decoders, which read bytes from the Raft
// log and from snapshots sent by peers: a command never crashes Apply, a refused
// command changes nothing, an applied one leaves a state whose records and snapshot
// round-trip; a snapshot either decodes or is refused.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "core/controller/state.h"

using namespace gojodb::controller;

namespace {
ClusterState Seeded() {
  ClusterState st = ClusterState::Initial();
  std::string r;
  std::vector<std::string> touched;
  for (uint64_t i = 1; i <= 3; ++i) {
    NodeRecord n;
    n.id = i;
    n.grpc_addr = "n" + std::to_string(i) + ":1";
    (void)Apply(&st, cmd::RegisterNode(n), &r, &touched);
  }
  ShardRecord s;
  s.id = 1;
  s.replicas = {{1, false}, {2, false}, {3, true}};
  (void)Apply(&st, cmd::BootstrapShards({s}), &r, &touched);
  // An index being built (id 2), so that index commands reach their checks.
  (void)Apply(&st, cmd::AddIndex("default", "default", {"by_a", {"a.b"}, true}), &r, &touched);
  return st;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  static const ClusterState seeded = Seeded();
  ClusterState st = seeded;
  std::string result;
  std::vector<std::string> touched;
  if (!Apply(&st, in, &result, &touched).ok()) {
    if (!(st == seeded) || !touched.empty()) std::abort();
  } else {
    auto back = DecodeState(EncodeState(st));
    if (!back.ok() || !(*back == st)) std::abort();
  }
  auto decoded = DecodeState(in);
  if (decoded.ok()) {
    auto again = DecodeState(EncodeState(*decoded));
    if (!again.ok() || !(*again == *decoded)) std::abort();
  }
  return 0;
}
