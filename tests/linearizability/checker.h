// A linearizability checker for a history of operations on registers (one per key), in
// the manner of Wing & Gong and Porcupine: keys are checked independently (a history is
// linearizable iff each key's subhistory is), and for each key a depth-first search
// looks for an order of the operations that respects real time (an operation that
// returned before another was invoked comes first) and the register's semantics, with a
// cache of (set of operations placed, register state) to cut repeated work.
//
// The register holds a value and its version (the commit timestamp a write returned).
// Operations: read (returns found/value/version), write (returns its version), and
// compare-and-set by version (if_version; 0: the key must not exist). Values written
// must be unique per key, so a read that saw a value also says which write it saw.
// An operation whose outcome the client never learnt (a timeout, a lost connection) has
// no return time: it may take effect at any point after its call, or never.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace gojodb::linearizability {

struct Op {
  enum class Kind { kRead, kWrite, kCas };
  Kind kind = Kind::kRead;
  std::string key;
  int client = 0;
  int64_t call = 0;                                   // invocation time (any monotonic unit)
  int64_t ret = std::numeric_limits<int64_t>::max();  // response time; max: unknown outcome
  bool unknown = false;                               // the outcome was never learnt
  // Read: what it returned. Write/cas: the value written.
  bool found = false;
  std::string value;
  // Read: the version it returned. Write, cas that succeeded: the new version (0 when
  // unknown). Cas: if_version in `expected`.
  uint64_t version = 0;
  uint64_t expected = 0;
  bool ok = true;  // cas: whether it applied (when known)
};

struct Verdict {
  bool linearizable = true;
  std::string key;          // the first key with no valid order
  std::string explanation;  // what could not be placed
  uint64_t states_explored = 0;
  bool gave_up = false;  // the search hit its budget: neither proved nor refuted
};

// Checks every key's subhistory. `budget`: most search states per key before giving up.
Verdict Check(const std::vector<Op>& history, uint64_t budget = 20'000'000);

}  // namespace gojodb::linearizability
