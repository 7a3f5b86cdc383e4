// A linearizability checker for one register (one key), in the style of Wing & Gong
// with Lowe's memoization: depth-first search over which pending operation takes effect
// next, remembering (set of done operations, register value) states already explored.
// Writes whose outcome is unknown (the client saw a timeout or an error) may take effect
// at any point after their call, or never. Histories are limited to 64 operations.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace gojodb::testing {

struct RegisterOp {
  bool is_write = false;
  std::optional<std::string> value;  // written, or read (nullopt: absent)
  int64_t call = 0;                  // monotonic time of the request
  int64_t ret = kUnknown;            // monotonic time of the answer; kUnknown: none
  static constexpr int64_t kUnknown = std::numeric_limits<int64_t>::max();
};

// True if some order of the operations, each taking effect between its call and its
// return, explains every read. `initial` is the register's value before the history.
inline bool CheckRegisterLinearizable(std::vector<RegisterOp> ops,
                                      std::optional<std::string> initial = std::nullopt) {
  if (ops.size() > 64) return false;  // beyond this checker's state encoding
  std::sort(ops.begin(), ops.end(), [](const auto& a, const auto& b) { return a.call < b.call; });
  const size_t n = ops.size();
  uint64_t must = 0;  // operations that completed: they must all take effect
  for (size_t i = 0; i < n; ++i) {
    if (ops[i].ret != RegisterOp::kUnknown) must |= uint64_t{1} << i;
  }
  std::set<std::pair<uint64_t, std::optional<std::string>>> seen;
  std::vector<std::pair<uint64_t, std::optional<std::string>>> stack = {{0, initial}};
  while (!stack.empty()) {
    auto [done, value] = stack.back();
    stack.pop_back();
    if ((done & must) == must) return true;
    if (!seen.insert({done, value}).second) continue;
    // The next operation must have been called before every pending one returned.
    int64_t horizon = RegisterOp::kUnknown;
    for (size_t i = 0; i < n; ++i) {
      if (!(done >> i & 1)) horizon = std::min(horizon, ops[i].ret);
    }
    for (size_t i = 0; i < n; ++i) {
      if (done >> i & 1 || ops[i].call > horizon) continue;
      const uint64_t next = done | uint64_t{1} << i;
      if (ops[i].is_write) {
        stack.push_back({next, ops[i].value});
      } else if (ops[i].value == value) {
        stack.push_back({next, value});
      }
    }
  }
  return false;
}

}  // namespace gojodb::testing
