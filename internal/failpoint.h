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

#include "internal/status.h"

namespace gojodb::failpoint {

// `arg` is what the place passes along to tell its instances apart (a group id, ...).
// What the action returns is the error the place fails with, where the place can fail
// (Inject); OK lets it go on.
using Action = std::function<Status(uint64_t arg)>;

namespace detail {
extern std::atomic<bool> any_set;
Status Run(std::string_view name, uint64_t arg);
}  // namespace detail

// Runs the action set for `name`, if any.
inline void Hit(std::string_view name, uint64_t arg = 0) {
  if (detail::any_set.load(std::memory_order_relaxed)) (void)detail::Run(name, arg);
}

// Runs the action set for `name`, if any, and returns its status: the place returns
// that error as if the step there had failed (a crash in mid-operation, seen by the
// code that retries it).
inline Status Inject(std::string_view name, uint64_t arg = 0) {
  if (!detail::any_set.load(std::memory_order_relaxed)) return Status::OK();
  return detail::Run(name, arg);
}

// Sets (or replaces) the action of `name`.
void Set(std::string_view name, Action action);
void Clear(std::string_view name);

// Sets an action for the lifetime of the object: one that only watches (or blocks), or
// with ScopedError one that may return an error.
class Scoped {
 public:
  Scoped(std::string_view name, std::function<void(uint64_t)> watch) : name_(name) {
    Set(name_, [watch = std::move(watch)](uint64_t arg) {
      watch(arg);
      return Status::OK();
    });
  }
  ~Scoped() { Clear(name_); }
  Scoped(const Scoped&) = delete;
  Scoped& operator=(const Scoped&) = delete;

 protected:
  struct Raw {};
  Scoped(Raw, std::string_view name, Action action) : name_(name) { Set(name_, std::move(action)); }

 private:
  std::string name_;
};

class ScopedError final : public Scoped {
 public:
  ScopedError(std::string_view name, Action action) : Scoped(Raw{}, name, std::move(action)) {}
};

}  // namespace gojodb::failpoint
