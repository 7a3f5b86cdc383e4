#include "core/controller/gc.h"

#include <algorithm>
#include <limits>
#include <vector>

#include "core/mvcc/key_codec.h"

namespace gojodb::controller {

using mvcc::kLogicalBits;

uint64_t GcTarget(uint64_t now_ms, uint64_t gc_ttl_ms, const std::map<std::string, GcHold>& holds) {
  if (now_ms <= gc_ttl_ms) return 0;
  uint64_t target = (now_ms - gc_ttl_ms) << kLogicalBits;
  for (const auto& [holder, h] : holds) {
    if (h.expires_ms > now_ms && h.min_start_ts != 0) target = std::min(target, h.min_start_ts);
  }
  return target;
}

uint64_t NextGcTarget(uint64_t current, uint64_t candidate, uint64_t gc_ttl_ms) {
  const uint64_t step = (gc_ttl_ms / 10) << kLogicalBits;
  return candidate > current && candidate - current >= step ? candidate : current;
}

uint64_t GcSafePointFromReports(const std::map<uint64_t, ShardRecord>& shards,
                                const std::map<uint64_t, GcResolvedReport>& resolved) {
  if (shards.empty()) return 0;
  std::vector<const ShardRecord*> by_start;
  for (const auto& [id, s] : shards) by_start.push_back(&s);
  std::sort(by_start.begin(), by_start.end(),
            [](const ShardRecord* a, const ShardRecord* b) { return a->start_key < b->start_key; });
  // A split's new shard may be missing from the map for a moment: a gap then.
  std::string expected_start;
  uint64_t least = std::numeric_limits<uint64_t>::max();
  for (size_t i = 0; i < by_start.size(); ++i) {
    const ShardRecord& s = *by_start[i];
    if (s.start_key != expected_start) return 0;
    if (s.end_key.empty() && i + 1 != by_start.size()) return 0;
    auto r = resolved.find(s.id);
    if (r == resolved.end() || r->second.version != s.epoch.version || r->second.fence == 0) {
      return 0;
    }
    least = std::min(least, r->second.fence);
    expected_start = s.end_key;
  }
  if (!by_start.back()->end_key.empty()) return 0;
  return least;
}

std::pair<std::string, std::string> ReclaimRange(const ReclaimEntry& e) {
  std::string lo = mvcc::CollectionPrefix(e.tenant_id, e.id);
  std::string hi = mvcc::PrefixSuccessor(lo);
  return {std::move(lo), std::move(hi)};
}

std::vector<ReclaimEntry> ReadyToReclaim(const std::map<uint32_t, ReclaimEntry>& reclaim,
                                         uint64_t safe_point) {
  std::vector<ReclaimEntry> out;
  for (const auto& [id, e] : reclaim) {
    if (e.lease_end_ts <= safe_point) out.push_back(e);
  }
  return out;
}

std::vector<uint32_t> ReclaimedIds(const std::map<uint64_t, ShardRecord>& shards,
                                   const std::map<uint32_t, ReclaimEntry>& reclaim,
                                   const std::set<ReclaimedReport>& reports) {
  std::vector<uint32_t> out;
  for (const auto& [id, e] : reclaim) {
    const auto [lo, hi] = ReclaimRange(e);
    // The shards whose range meets [lo, hi), by start key.
    std::vector<const ShardRecord*> meeting;
    for (const auto& [sid, s] : shards) {
      if (s.start_key < hi && (s.end_key.empty() || s.end_key > lo)) meeting.push_back(&s);
    }
    std::sort(meeting.begin(), meeting.end(), [](const ShardRecord* a, const ShardRecord* b) {
      return a->start_key < b->start_key;
    });
    std::string covered = lo;  // [lo, covered) is covered
    bool whole = false;
    for (const ShardRecord* s : meeting) {
      if (s->start_key > covered) break;  // a gap (a split's new shard not in the map yet)
      if (!reports.count({s->id, s->epoch.version, id})) break;
      if (s->end_key.empty() || s->end_key >= hi) {
        whole = true;
        break;
      }
      covered = std::max(covered, s->end_key);
    }
    if (whole) out.push_back(id);
  }
  return out;
}

}  // namespace gojodb::controller
