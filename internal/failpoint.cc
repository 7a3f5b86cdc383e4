#include "internal/failpoint.h"

#include <map>
#include <memory>
#include <mutex>

namespace gojodb::failpoint {
namespace detail {
std::atomic<bool> any_set{false};
}  // namespace detail

namespace {

struct Registry {
  std::mutex mu;
  std::map<std::string, std::shared_ptr<const Action>, std::less<>> actions;
};

Registry& Get() {
  static Registry* r = new Registry();  // never destroyed: points may be hit at exit
  return *r;
}

}  // namespace

Status detail::Run(std::string_view name, uint64_t arg) {
  std::shared_ptr<const Action> action;
  {
    Registry& r = Get();
    std::lock_guard lock(r.mu);
    auto it = r.actions.find(name);
    if (it == r.actions.end()) return Status::OK();
    action = it->second;
  }
  return (*action)(arg);
}

void Set(std::string_view name, Action action) {
  Registry& r = Get();
  std::lock_guard lock(r.mu);
  r.actions.insert_or_assign(std::string(name), std::make_shared<const Action>(std::move(action)));
  detail::any_set.store(true, std::memory_order_relaxed);
}

void Clear(std::string_view name) {
  Registry& r = Get();
  std::lock_guard lock(r.mu);
  if (auto it = r.actions.find(name); it != r.actions.end()) r.actions.erase(it);
  detail::any_set.store(!r.actions.empty(), std::memory_order_relaxed);
}

}  // namespace gojodb::failpoint
