// Fail points: named places in the code where a test runs an action of its own (block
// until released, record, crash) at an exact moment. An interleaving of threads that is
// rare in production (a node applying a split while its replica of the new shard is
// between persisting a snapshot and restoring it) then replays in a test every time.
//
// A fail point that no test set costs one relaxed atomic load. Actions run on the thread
// that reached the point, outside any lock of this module, so an action may block.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace gojodb::failpoint {

// `arg` is what the place passes along to tell its instances apart (a group id, ...).
using Action = std::function<void(uint64_t arg)>;

namespace detail {
extern std::atomic<bool> any_set;
void Run(std::string_view name, uint64_t arg);
}  // namespace detail

// Runs the action set for `name`, if any.
inline void Hit(std::string_view name, uint64_t arg = 0) {
  if (detail::any_set.load(std::memory_order_relaxed)) detail::Run(name, arg);
}

// Sets (or replaces) the action of `name`.
void Set(std::string_view name, Action action);
void Clear(std::string_view name);

// Sets an action for the lifetime of the object.
class Scoped {
 public:
  Scoped(std::string_view name, Action action) : name_(name) { Set(name_, std::move(action)); }
  ~Scoped() { Clear(name_); }
  Scoped(const Scoped&) = delete;
  Scoped& operator=(const Scoped&) = delete;

 private:
  std::string name_;
};

}  // namespace gojodb::failpoint
