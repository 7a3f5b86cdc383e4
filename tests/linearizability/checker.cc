#include "tests/linearizability/checker.h"

#include <algorithm>
#include <functional>
#include <map>
#include <set>
#include <unordered_set>

namespace gojodb::linearizability {
namespace {

// The register's state: the write whose value it holds (-1: the key does not exist).
// Values are unique per key, so the write determines value and version.
struct Model {
  // Per write index: its value's version when any observation revealed it, else 0.
  std::vector<uint64_t> version_of;
  std::map<std::string, int> write_by_value;

  uint64_t VersionOf(int state) const { return state < 0 ? 0 : version_of[state]; }
};

struct Event {
  int64_t time;
  bool is_call;
  int op;
};

class KeyChecker {
 public:
  KeyChecker(std::vector<Op> ops, uint64_t budget) : ops_(std::move(ops)), budget_(budget) {}

  Verdict Run() {
    Verdict v;
    // Writes (and cas) are the register's possible states; learn each one's version from
    // its own answer and from reads that returned its value.
    write_index_.assign(ops_.size(), -1);
    for (size_t i = 0; i < ops_.size(); ++i) {
      if (ops_[i].kind == Op::Kind::kRead) continue;
      if (model_.write_by_value.count(ops_[i].value)) {
        v.linearizable = false;
        v.explanation = "value '" + ops_[i].value + "' was written twice; values must be unique";
        return v;
      }
      write_index_[i] = static_cast<int>(model_.version_of.size());
      model_.write_by_value[ops_[i].value] = write_index_[i];
      model_.version_of.push_back(ops_[i].ok && !ops_[i].unknown ? ops_[i].version : 0);
    }
    for (const auto& op : ops_) {
      if (op.kind != Op::Kind::kRead || !op.found) continue;
      auto it = model_.write_by_value.find(op.value);
      if (it == model_.write_by_value.end()) {
        v.linearizable = false;
        v.explanation = "a read returned '" + op.value + "', which nothing wrote";
        return v;
      }
      uint64_t& known = model_.version_of[it->second];
      if (known != 0 && known != op.version) {
        v.linearizable = false;
        v.explanation = "value '" + op.value + "' was seen with versions " + std::to_string(known) +
                        " and " + std::to_string(op.version);
        return v;
      }
      known = op.version;
    }
    // Events in time order; at equal times calls come first: operations that touch at
    // an instant count as concurrent (the clock cannot order them).
    for (size_t i = 0; i < ops_.size(); ++i) {
      events_.push_back({ops_[i].call, true, static_cast<int>(i)});
      if (ops_[i].ret != std::numeric_limits<int64_t>::max()) {
        events_.push_back({ops_[i].ret, false, static_cast<int>(i)});
      }
    }
    std::sort(events_.begin(), events_.end(), [](const Event& a, const Event& b) {
      if (a.time != b.time) return a.time < b.time;
      return a.is_call && !b.is_call;
    });
    done_.assign(ops_.size(), false);
    bool found = Search(-1, 0);
    v.states_explored = explored_;
    if (!found) {
      v.gave_up = explored_ >= budget_;
      v.linearizable = v.gave_up;  // not refuted
      v.explanation = v.gave_up ? "search budget exhausted" : deepest_;
    }
    return v;
  }

 private:
  // Applies op to state; false when the op cannot take effect in that state.
  bool Step(int state, int i, int* next) const {
    const Op& op = ops_[i];
    switch (op.kind) {
      case Op::Kind::kRead:
        if (!op.found) return state < 0 ? (*next = state, true) : false;
        if (state < 0) return false;
        if (model_.write_by_value.at(op.value) != state) return false;
        *next = state;
        return true;
      case Op::Kind::kWrite:
        *next = write_index_[i];
        return true;
      case Op::Kind::kCas: {
        const uint64_t current = model_.VersionOf(state);
        // A version never observed equals no expectation (expectations come from
        // observations), except "absent" (0) for the empty register.
        const bool matches =
            state < 0 ? op.expected == 0 : (current != 0 && current == op.expected);
        if (op.unknown || op.ok) {
          if (!matches) return false;
          *next = write_index_[i];
          return true;
        }
        if (matches) return false;  // it failed, so the condition must have been false
        *next = state;
        return true;
      }
    }
    return false;
  }

  // Depth-first: place one pending operation that may come next, recurse.
  bool Search(int state, size_t placed_known) {
    if (++explored_ >= budget_) return false;
    if (placed_known == known_count()) return true;
    std::string memo = Memo(state);
    if (!seen_.insert(std::move(memo)).second) return false;
    // Candidates: calls not yet placed that occur before the first return of an op not
    // yet placed (that op must be placed before anything invoked after its return).
    for (const auto& e : events_) {
      if (!e.is_call) {
        if (!done_[e.op]) break;
        continue;
      }
      if (done_[e.op]) continue;
      int next;
      if (!Step(state, e.op, &next)) continue;
      done_[e.op] = true;
      const bool known = ops_[e.op].ret != std::numeric_limits<int64_t>::max();
      if (Search(next, placed_known + (known ? 1 : 0))) return true;
      done_[e.op] = false;
      if (explored_ >= budget_) return false;
    }
    if (placed_known > deepest_count_) {
      deepest_count_ = placed_known;
      deepest_ = Describe(state);
    }
    return false;
  }

  size_t known_count() {
    if (known_total_ == SIZE_MAX) {
      known_total_ = 0;
      for (const auto& op : ops_) {
        if (op.ret != std::numeric_limits<int64_t>::max()) known_total_++;
      }
    }
    return known_total_;
  }

  std::string Memo(int state) const {
    std::string m(reinterpret_cast<const char*>(&state), sizeof(state));
    uint8_t byte = 0;
    for (size_t i = 0; i < done_.size(); ++i) {
      if (done_[i]) byte |= uint8_t(1u << (i % 8));
      if (i % 8 == 7 || i + 1 == done_.size()) {
        m.push_back(static_cast<char>(byte));
        byte = 0;
      }
    }
    return m;
  }

  std::string Describe(int state) const {
    std::string s =
        "after " + std::to_string(deepest_count_) + " operations the register holds " +
        (state < 0 ? std::string("nothing")
                   : "'" +
                         ops_[std::find(write_index_.begin(), write_index_.end(), state) -
                              write_index_.begin()]
                             .value +
                         "'") +
        " and none of the pending operations can come next:";
    int shown = 0;
    for (const auto& e : events_) {
      if (!e.is_call || done_[e.op] || shown >= 6) continue;
      const Op& op = ops_[e.op];
      s += " [client " + std::to_string(op.client) + " " +
           (op.kind == Op::Kind::kRead    ? "read " + (op.found ? op.value : "<absent>")
            : op.kind == Op::Kind::kWrite ? "write " + op.value
                                          : "cas " + std::to_string(op.expected) + "->" + op.value +
                                                (op.unknown ? " ?"
                                                 : op.ok    ? " ok"
                                                            : " failed")) +
           " " + std::to_string(op.call) + ".." +
           (op.ret == std::numeric_limits<int64_t>::max() ? "?" : std::to_string(op.ret)) + "]";
      shown++;
    }
    return s;
  }

  std::vector<Op> ops_;
  const uint64_t budget_;
  Model model_;
  std::vector<int> write_index_;
  std::vector<Event> events_;
  std::vector<bool> done_;
  std::unordered_set<std::string> seen_;
  uint64_t explored_ = 0;
  size_t known_total_ = SIZE_MAX;
  size_t deepest_count_ = 0;
  std::string deepest_ = "no operation can come first";
};

}  // namespace

Verdict Check(const std::vector<Op>& history, uint64_t budget) {
  std::map<std::string, std::vector<Op>> by_key;
  for (const auto& op : history) by_key[op.key].push_back(op);
  Verdict total;
  for (auto& [key, ops] : by_key) {
    // An operation with an unknown outcome that no read observed, and that no later
    // failed compare-and-set could need as its explanation, may as well never have
    // happened: leaving it out explains the same observations, and it is what makes
    // the search expensive (it could go anywhere after its call).
    std::set<std::string> observed;
    int64_t last_failed_cas = std::numeric_limits<int64_t>::min();
    for (const auto& op : ops) {
      if (op.kind == Op::Kind::kRead && op.found) observed.insert(op.value);
      if (op.kind == Op::Kind::kCas && !op.unknown && !op.ok) {
        last_failed_cas = std::max(last_failed_cas, op.ret);
      }
    }
    std::erase_if(ops, [&](const Op& op) {
      return op.unknown && op.kind != Op::Kind::kRead && !observed.count(op.value) &&
             op.call > last_failed_cas;
    });
    KeyChecker c(std::move(ops), budget);
    Verdict v = c.Run();
    total.states_explored += v.states_explored;
    if (v.gave_up && !total.gave_up) {
      total.gave_up = true;
      total.key = key;
      total.explanation = "search budget exhausted";
    }
    if (!v.linearizable) {
      v.key = key;
      v.states_explored = total.states_explored;
      return v;
    }
  }
  return total;
}

}  // namespace gojodb::linearizability
