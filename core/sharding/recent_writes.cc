#include "core/sharding/recent_writes.h"

#include <functional>

namespace gojodb::sharding {

RecentWrites::RecentWrites(uint64_t floor, size_t slots)
    : floor_(floor), mask_(slots - 1), slots_(new uint64_t[slots]()) {}

size_t RecentWrites::Slot(std::string_view row) const {
  const size_t hash = std::hash<std::string_view>{}(row);
  return hash & mask_;
}

}  // namespace gojodb::sharding
