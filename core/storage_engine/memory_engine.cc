#include "core/storage_engine/memory_engine.h"

#include <algorithm>
#include <array>
#include <mutex>
#include <set>
#include <shared_mutex>

namespace gojodb::storage {
namespace {

struct Version {
  uint64_t seq;
  std::optional<std::string> value;  // nullopt: deleted
};
using VersionMap = std::map<std::string, std::vector<Version>, std::less<>>;

class MemorySnapshot;

class MemoryEngine final : public Engine {
 public:
  explicit MemoryEngine(const EngineOptions& options) : filters_(options.filters) {}

  Status Write(const WriteOptions&, const WriteBatch& batch) override {
    std::unique_lock lock(mu_);
    const uint64_t seq = ++seq_;
    for (const auto& op : batch.ops()) {
      auto& map = maps_[static_cast<int>(op.cf)];
      switch (op.type) {
        case WriteBatch::OpType::kPut:
          Append(map, op.key, seq, op.value);
          break;
        case WriteBatch::OpType::kDelete:
          Append(map, op.key, seq, std::nullopt);
          break;
        case WriteBatch::OpType::kDeleteRange: {
          if (op.key >= op.value) break;
          std::vector<std::string> keys;
          for (auto it = map.lower_bound(op.key); it != map.end() && it->first < op.value; ++it) {
            keys.push_back(it->first);
          }
          for (const auto& k : keys) Append(map, k, seq, std::nullopt);
          break;
        }
      }
    }
    return Status::OK();
  }

  Result<std::optional<std::string>> Get(const ReadOptions& options, ColumnFamily cf,
                                         std::string_view key) override {
    std::shared_lock lock(mu_);
    const auto& map = maps_[static_cast<int>(cf)];
    auto it = map.find(key);
    if (it == map.end()) return std::optional<std::string>();
    const Version* v = Visible(it->second, ReadSeq(options));
    if (!v) return std::optional<std::string>();
    return std::optional<std::string>(*v->value);
  }

  std::unique_ptr<Iterator> NewIterator(const ReadOptions& options, ColumnFamily cf) override;
  std::shared_ptr<const Snapshot> GetSnapshot() override;

  Status SyncWal() override { return Status::OK(); }

  Status CompactRange(ColumnFamily cf, std::string_view begin, std::string_view end,
                      const std::atomic<bool>* cancel) override {
    if (cancel != nullptr && *cancel) return Status::Cancelled("compaction canceled");
    auto f = filters_.find(cf);
    std::unique_lock lock(mu_);
    if (f == filters_.end() || !f->second) return Status::OK();
    auto filter = f->second->NewFilter();
    auto& map = maps_[static_cast<int>(cf)];
    const uint64_t seq = ++seq_;
    std::vector<std::string> drop;
    auto it = begin.empty() ? map.begin() : map.lower_bound(begin);
    for (; it != map.end() && (end.empty() || it->first < end); ++it) {
      const Version* v = Visible(it->second, seq);
      if (v && !filter->Keep(it->first, *v->value)) drop.push_back(it->first);
    }
    for (const auto& k : drop) Append(map, k, seq, std::nullopt);
    return Status::OK();
  }

  Result<uint64_t> ApproximateSize(ColumnFamily cf, std::string_view begin,
                                   std::string_view end) override {
    std::shared_lock lock(mu_);
    auto& map = maps_[static_cast<int>(cf)];
    uint64_t bytes = 0;
    auto it = begin.empty() ? map.begin() : map.lower_bound(begin);
    for (; it != map.end() && (end.empty() || it->first < end); ++it) {
      const Version* v = Visible(it->second, seq_);
      if (v && v->value) bytes += it->first.size() + v->value->size();
    }
    return bytes;
  }

  std::map<std::string, uint64_t> Stats() override {
    std::shared_lock lock(mu_);
    uint64_t keys = 0;
    for (const auto& m : maps_) keys += m.size();
    return {{"estimate_num_keys", keys}};
  }

  std::string_view Kind() const override { return "memory"; }

  // --- used by iterators and snapshots ---
  uint64_t Pin() {
    std::unique_lock lock(mu_);
    live_.insert(seq_);
    return seq_;
  }
  void Unpin(uint64_t seq) {
    std::unique_lock lock(mu_);
    live_.erase(live_.find(seq));
  }

  // Finds the first (forward) or last (!forward) visible key relative to `from`.
  // `inclusive` decides whether `from` itself qualifies. Returns false at the end.
  bool Find(ColumnFamily cf, uint64_t seq, std::string_view from, bool from_is_edge, bool forward,
            bool inclusive, std::string* key, std::string* value) {
    std::shared_lock lock(mu_);
    const auto& map = maps_[static_cast<int>(cf)];
    if (forward) {
      auto it =
          from_is_edge ? map.begin() : (inclusive ? map.lower_bound(from) : map.upper_bound(from));
      for (; it != map.end(); ++it) {
        if (const Version* v = Visible(it->second, seq)) {
          *key = it->first;
          *value = *v->value;
          return true;
        }
      }
      return false;
    }
    auto it =
        from_is_edge ? map.end() : (inclusive ? map.upper_bound(from) : map.lower_bound(from));
    while (it != map.begin()) {
      --it;
      if (const Version* v = Visible(it->second, seq)) {
        *key = it->first;
        *value = *v->value;
        return true;
      }
    }
    return false;
  }

 private:
  static const Version* Visible(const std::vector<Version>& versions, uint64_t seq) {
    for (auto it = versions.rbegin(); it != versions.rend(); ++it) {
      if (it->seq <= seq) return it->value ? &*it : nullptr;
    }
    return nullptr;
  }

  uint64_t ReadSeq(const ReadOptions& options) const;

  // REQUIRES: mu_ held exclusively.
  void Append(VersionMap& map, const std::string& key, uint64_t seq,
              std::optional<std::string> value) {
    auto [it, inserted] = map.try_emplace(key);
    auto& versions = it->second;
    versions.push_back({seq, std::move(value)});
    // Versions older than the newest one every reader can see are garbage.
    const uint64_t horizon = live_.empty() ? seq : std::min(*live_.begin(), seq);
    size_t keep_from = 0;
    for (size_t i = versions.size(); i-- > 0;) {
      if (versions[i].seq <= horizon) {
        keep_from = i;
        break;
      }
    }
    versions.erase(versions.begin(), versions.begin() + static_cast<long>(keep_from));
    if (versions.size() == 1 && !versions[0].value && versions[0].seq <= horizon) map.erase(it);
  }

  const std::map<ColumnFamily, std::shared_ptr<KeyFilterFactory>> filters_;
  mutable std::shared_mutex mu_;
  uint64_t seq_ = 0;                                 // GUARDED_BY(mu_)
  std::multiset<uint64_t> live_;                     // GUARDED_BY(mu_): pinned read sequences
  std::array<VersionMap, kNumColumnFamilies> maps_;  // GUARDED_BY(mu_)
};

class MemorySnapshot final : public Snapshot {
 public:
  MemorySnapshot(MemoryEngine* engine) : engine_(engine), seq_(engine->Pin()) {}
  ~MemorySnapshot() override { engine_->Unpin(seq_); }
  uint64_t seq() const { return seq_; }

 private:
  MemoryEngine* engine_;
  uint64_t seq_;
};

uint64_t MemoryEngine::ReadSeq(const ReadOptions& options) const {
  if (options.snapshot) return static_cast<const MemorySnapshot*>(options.snapshot)->seq();
  return seq_;
}

class MemoryIterator final : public Iterator {
 public:
  MemoryIterator(MemoryEngine* engine, ColumnFamily cf, const ReadOptions& options)
      : engine_(engine),
        cf_(cf),
        pin_(engine),
        seq_(options.snapshot ? static_cast<const MemorySnapshot*>(options.snapshot)->seq()
                              : pin_.seq()),
        lower_(options.lower_bound),
        upper_(options.upper_bound) {}

  bool Valid() const override { return valid_; }
  void SeekToFirst() override {
    if (lower_.empty())
      Load(engine_->Find(cf_, seq_, "", true, true, true, &key_, &value_));
    else
      Seek(lower_);
  }
  void SeekToLast() override {
    if (upper_.empty())
      Load(engine_->Find(cf_, seq_, "", true, false, true, &key_, &value_));
    else
      Load(engine_->Find(cf_, seq_, upper_, false, false, false, &key_, &value_));
  }
  void Seek(std::string_view target) override {
    std::string t(target);
    if (!lower_.empty() && t < lower_) t = lower_;
    Load(engine_->Find(cf_, seq_, t, false, true, true, &key_, &value_));
  }
  void SeekForPrev(std::string_view target) override {
    if (!upper_.empty() && target >= upper_) return SeekToLast();
    Load(engine_->Find(cf_, seq_, target, false, false, true, &key_, &value_));
  }
  void Next() override {
    std::string from = key_;
    Load(engine_->Find(cf_, seq_, from, false, true, false, &key_, &value_));
  }
  void Prev() override {
    std::string from = key_;
    Load(engine_->Find(cf_, seq_, from, false, false, false, &key_, &value_));
  }
  std::string_view key() const override { return key_; }
  std::string_view value() const override { return value_; }
  Status status() const override { return Status::OK(); }

 private:
  void Load(bool found) {
    valid_ = found && (lower_.empty() || key_ >= lower_) && (upper_.empty() || key_ < upper_);
  }

  MemoryEngine* engine_;
  ColumnFamily cf_;
  MemorySnapshot pin_;  // keeps the versions this iterator reads from being pruned
  uint64_t seq_;
  std::string lower_, upper_;
  bool valid_ = false;
  std::string key_, value_;
};

std::unique_ptr<Iterator> MemoryEngine::NewIterator(const ReadOptions& options, ColumnFamily cf) {
  return std::make_unique<MemoryIterator>(this, cf, options);
}

std::shared_ptr<const Snapshot> MemoryEngine::GetSnapshot() {
  return std::make_shared<MemorySnapshot>(this);
}

}  // namespace

Engine* NewMemoryEngine(const EngineOptions& options) { return new MemoryEngine(options); }

}  // namespace gojodb::storage
