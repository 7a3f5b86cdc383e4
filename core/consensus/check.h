// Invariant checks of the Raft core.
//
// A failed check means the core's own state (or a Storage that broke its contract) is
// corrupt: continuing could violate safety, so the process aborts with a message, as
// etcd's raft panics. Expected failures (a dropped proposal, a compacted index) are
// returned as Status values instead and never reach these checks.
#pragma once

namespace gojodb::consensus::internal {
[[noreturn]] void CheckFailed(const char* file, int line, const char* cond, const char* msg);
}  // namespace gojodb::consensus::internal

#define RAFT_CHECK(cond, msg)                                                                \
  do {                                                                                       \
    if (!(cond)) ::gojodb::consensus::internal::CheckFailed(__FILE__, __LINE__, #cond, msg); \
  } while (0)
