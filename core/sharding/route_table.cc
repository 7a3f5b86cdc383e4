#include "core/sharding/route_table.h"

#include <mutex>

namespace gojodb::sharding {

namespace {

// [a_start, a_end) and [b_start, b_end) overlap; an empty end is the keyspace's end.
bool Overlaps(std::string_view a_start, std::string_view a_end, std::string_view b_start,
              std::string_view b_end) {
  const bool a_before_b_ends = b_end.empty() || a_start < b_end;
  const bool b_before_a_ends = a_end.empty() || b_start < a_end;
  return a_before_b_ends && b_before_a_ends;
}

}  // namespace

bool NewerEpoch(const controller::Epoch& a, const controller::Epoch& b) {
  return a.version >= b.version && a.conf_ver >= b.conf_ver && !(a == b);
}

bool RouteTable::Reset(uint64_t version, std::vector<ShardRecord> shards) {
  std::unique_lock lock(mu_);
  if (version < version_) return false;
  version_ = version;
  by_start_.clear();
  for (auto& s : shards) {
    std::string start = s.start_key;
    by_start_[std::move(start)] = std::move(s);
  }
  return true;
}

void RouteTable::EraseOverlapping(std::string_view start, std::string_view end) {
  for (auto it = by_start_.begin(); it != by_start_.end();) {
    if (Overlaps(it->second.start_key, it->second.end_key, start, end)) {
      it = by_start_.erase(it);
    } else {
      ++it;
    }
  }
}

int RouteTable::Update(const std::vector<ShardRecord>& descriptors) {
  std::unique_lock lock(mu_);
  int taken = 0;
  for (const auto& d : descriptors) {
    bool newer_than_all = true;
    bool same = false;
    for (const auto& [start, c] : by_start_) {
      if (!Overlaps(c.start_key, c.end_key, d.start_key, d.end_key) && c.id != d.id) continue;
      if (c.id == d.id) {
        if (c.epoch == d.epoch && c.start_key == d.start_key && c.end_key == d.end_key) {
          same = true;
        } else if (!NewerEpoch(d.epoch, c.epoch)) {
          newer_than_all = false;
        }
      } else if (d.epoch.version <= c.epoch.version) {
        newer_than_all = false;  // another shard that is at least as new holds these keys
      }
    }
    if (same) {
      // Nothing new but perhaps the leader.
      auto it = by_start_.find(d.start_key);
      if (it != by_start_.end() && d.leader != 0) it->second.leader = d.leader;
      continue;
    }
    if (!newer_than_all) continue;
    // Drop the shard's own older descriptor wherever its range was, and every shard
    // whose keys it now holds.
    for (auto it = by_start_.begin(); it != by_start_.end();) {
      it = it->second.id == d.id ? by_start_.erase(it) : std::next(it);
    }
    EraseOverlapping(d.start_key, d.end_key);
    by_start_[d.start_key] = d;
    ++taken;
  }
  return taken;
}

void RouteTable::SetLeader(uint64_t id, uint64_t leader) {
  std::unique_lock lock(mu_);
  for (auto& [start, s] : by_start_) {
    if (s.id == id) s.leader = leader;
  }
}

void RouteTable::Invalidate(uint64_t id) {
  std::unique_lock lock(mu_);
  for (auto it = by_start_.begin(); it != by_start_.end();) {
    it = it->second.id == id ? by_start_.erase(it) : std::next(it);
  }
}

Result<ShardRecord> RouteTable::Locate(std::string_view key) const {
  std::shared_lock lock(mu_);
  auto it = by_start_.upper_bound(std::string(key));
  if (it == by_start_.begin()) return Status::NotFound("no cached shard holds the key");
  --it;
  const ShardRecord& s = it->second;
  if (!s.end_key.empty() && key >= s.end_key) {
    return Status::NotFound("no cached shard holds the key");
  }
  return s;
}

Result<std::vector<ShardRecord>> RouteTable::Range(std::string_view start,
                                                   std::string_view end) const {
  std::shared_lock lock(mu_);
  std::vector<ShardRecord> out;
  auto it = by_start_.upper_bound(std::string(start));
  if (it == by_start_.begin()) {
    return Status::FailedPrecondition("the cached shard map has a gap at the range's start");
  }
  --it;
  std::string_view at = start;  // the first key not yet covered
  while (true) {
    const ShardRecord& s = it->second;
    if (s.start_key > at || (!s.end_key.empty() && s.end_key <= at)) {
      return Status::FailedPrecondition("the cached shard map has a gap in the range");
    }
    out.push_back(s);
    if (s.end_key.empty() || (!end.empty() && s.end_key >= end)) return out;
    at = s.end_key;
    ++it;
    if (it == by_start_.end()) {
      return Status::FailedPrecondition("the cached shard map has a gap in the range");
    }
  }
}

uint64_t RouteTable::version() const {
  std::shared_lock lock(mu_);
  return version_;
}

size_t RouteTable::size() const {
  std::shared_lock lock(mu_);
  return by_start_.size();
}

}  // namespace gojodb::sharding
