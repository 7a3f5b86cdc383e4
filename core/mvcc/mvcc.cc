#include "core/mvcc/mvcc.h"

#include <algorithm>

namespace gojodb::mvcc {
namespace {

constexpr char kPutTag = 'P';
constexpr char kDeleteTag = 'D';
constexpr char kTxnPutTag = 'p';
constexpr char kTxnDeleteTag = 'd';

bool HasPrefix(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

}  // namespace

Result<VersionedValue> DecodeVersion(Timestamp ts, std::string_view record) {
  VersionedValue v;
  v.version = ts;
  v.start_ts = ts;
  const char tag = record.empty() ? '\0' : record[0];
  switch (tag) {
    case kPutTag:
    case kDeleteTag:
      record.remove_prefix(1);
      break;
    case kTxnPutTag:
    case kTxnDeleteTag:
      if (record.size() < 9) return Status::Corruption("short transactional version record");
      v.start_ts = ReadUint64(record.substr(1));
      if (v.start_ts >= ts) return Status::Corruption("version starts at or after its commit");
      record.remove_prefix(9);
      break;
    default:
      return Status::Corruption("bad version record");
  }
  v.deleted = tag == kDeleteTag || tag == kTxnDeleteTag;
  if (v.deleted && !record.empty()) return Status::Corruption("tombstone with a value");
  if (!v.deleted) v.value.assign(record);
  return v;
}

void PutVersion(storage::WriteBatch* batch, std::string_view row_key, Timestamp ts,
                std::string_view value) {
  std::string record;
  record.reserve(value.size() + 1);
  record.push_back(kPutTag);
  record.append(value);
  batch->PutOwned(kVersionCf, EncodeVersionKey(row_key, ts), std::move(record));
}

void DeleteVersion(storage::WriteBatch* batch, std::string_view row_key, Timestamp ts) {
  batch->PutOwned(kVersionCf, EncodeVersionKey(row_key, ts), std::string(1, kDeleteTag));
}

void PutCommitted(storage::WriteBatch* batch, std::string_view row_key, Timestamp commit_ts,
                  Timestamp start_ts, std::string_view value) {
  std::string record;
  record.reserve(value.size() + 9);
  record.push_back(kTxnPutTag);
  AppendUint64(&record, start_ts);
  record.append(value);
  batch->PutOwned(kVersionCf, EncodeVersionKey(row_key, commit_ts), std::move(record));
}

void DeleteCommitted(storage::WriteBatch* batch, std::string_view row_key, Timestamp commit_ts,
                     Timestamp start_ts) {
  std::string record(1, kTxnDeleteTag);
  AppendUint64(&record, start_ts);
  batch->PutOwned(kVersionCf, EncodeVersionKey(row_key, commit_ts), std::move(record));
}

Result<std::optional<Timestamp>> MvccReader::FindCommit(std::string_view row_key,
                                                        Timestamp start_ts) {
  if (start_ts == kMaxTimestamp) return std::optional<Timestamp>();
  storage::ReadOptions ro;
  ro.snapshot = snapshot_;
  ro.lower_bound = EncodeVersionKey(row_key, kMaxTimestamp);
  ro.upper_bound = EncodeVersionKey(row_key, start_ts);  // versions above start_ts only
  auto it = engine_->NewIterator(ro, kVersionCf);
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    const Timestamp ts = ~ReadUint64(it->key().substr(row_key.size()));
    ASSIGN_OR_RETURN(auto v, DecodeVersion(ts, it->value()));
    if (v.start_ts == start_ts) return std::optional<Timestamp>(ts);
  }
  RETURN_IF_ERROR(it->status());
  return std::optional<Timestamp>();
}

Result<std::optional<VersionedValue>> MvccReader::Get(std::string_view row_key, Timestamp read_ts) {
  std::optional<VersionedValue> out;
  RETURN_IF_ERROR(GetEach(
      1, [&](size_t) { return row_key; }, read_ts,
      [&](size_t, std::optional<VersionedValue> v) -> Result<bool> {
        out = std::move(v);
        return false;
      }));
  return out;
}

Status MvccReader::GetEach(const std::vector<std::string>& row_keys, Timestamp read_ts,
                           const GetVisitor& visit) {
  return GetEach(
      row_keys.size(), [&](size_t i) -> std::string_view { return row_keys[i]; }, read_ts, visit);
}

Status MvccReader::GetEach(size_t count, const std::function<std::string_view(size_t)>& row_at,
                           Timestamp read_ts, const GetVisitor& visit) {
  if (count == 0) return Status::OK();
  std::string_view lo = row_at(0), hi = lo;
  for (size_t i = 1; i < count; ++i) {
    const std::string_view row = row_at(i);
    lo = std::min(lo, row);
    hi = std::max(hi, row);
  }
  storage::ReadOptions ro;
  ro.snapshot = snapshot_;
  ro.lower_bound = std::string(lo);
  ro.upper_bound = PrefixSuccessor(hi);
  ro.prefix_seek = true;  // each Seek looks for one row: its bloom filters can rule it out
  auto it = engine_->NewIterator(ro, kVersionCf);
  for (size_t i = 0; i < count; ++i) {
    const std::string_view row = row_at(i);
    it->Seek(EncodeVersionKey(row, read_ts));
    std::optional<VersionedValue> value;
    if (it->Valid() && HasPrefix(it->key(), row) && it->key().size() == row.size() + 8) {
      ASSIGN_OR_RETURN(auto v,
                       DecodeVersion(~ReadUint64(it->key().substr(row.size())), it->value()));
      value = std::move(v);
    } else {
      RETURN_IF_ERROR(it->status());
    }
    ASSIGN_OR_RETURN(bool more, visit(i, std::move(value)));
    if (!more) break;
  }
  return Status::OK();
}

Result<ScanOutput> MvccReader::Scan(const ScanOptions& o) {
  const std::string prefix = CollectionPrefix(o.tenant, o.collection);
  storage::ReadOptions ro;
  ro.snapshot = snapshot_;
  ro.lower_bound = o.start.empty() ? prefix : EncodeRowKey(o.tenant, o.collection, o.start);
  ro.upper_bound =
      o.end.empty() ? PrefixSuccessor(prefix) : EncodeRowKey(o.tenant, o.collection, o.end);
  ScanOutput out;
  if (o.limit == 0) return Status::InvalidArgument("scan limit must be at least 1");
  if (ro.lower_bound >= ro.upper_bound) return out;
  auto it = engine_->NewIterator(ro, kVersionCf);
  // Whether `it` is on a version of `row_key`.
  auto on_row = [&](const std::string& row_key) {
    return it->Valid() && HasPrefix(it->key(), row_key) && it->key().size() == row_key.size() + 8;
  };
  // A few steps with Next cost less than a Seek (which searches every level again), and
  // most rows have one or two versions: step first, seek only past a longer run (as
  // RocksDB's own iterator skips its internal versions).
  constexpr int kSteps = 4;

  // Positions `it` anywhere inside one row and resolves that row's visible version.
  // Returns the row's decoded key; `visible` is set when a live version exists.
  auto resolve = [&](std::optional<ScanItem>* visible) -> Result<std::string> {
    ASSIGN_OR_RETURN(auto d, DecodeVersionKey(it->key()));
    std::string row_key(d.row_key);
    visible->reset();
    if (d.ts > o.read_ts) {
      // Versions run newest first: step down to the first at or below read_ts.
      int steps = 0;
      for (; steps < kSteps; ++steps) {
        it->Next();
        if (!on_row(row_key) || ~ReadUint64(it->key().substr(row_key.size())) <= o.read_ts) break;
      }
      if (steps == kSteps) it->Seek(EncodeVersionKey(row_key, o.read_ts));
    }
    if (on_row(row_key)) {
      Timestamp ts = ~ReadUint64(it->key().substr(row_key.size()));
      ASSIGN_OR_RETURN(auto v, DecodeVersion(ts, it->value()));
      if (!v.deleted) *visible = ScanItem{std::move(d.user_key), std::move(v.value), ts};
    }
    RETURN_IF_ERROR(it->status());
    return row_key;
  };

  std::optional<ScanItem> visible;
  if (!o.reverse) {
    for (it->SeekToFirst(); it->Valid();) {
      ASSIGN_OR_RETURN(std::string row_key, resolve(&visible));
      if (visible) {
        if (out.items.size() == o.limit) {
          out.next = std::move(visible->key);
          break;
        }
        out.items.push_back(std::move(*visible));
      }
      // On to the next row: past this row's older versions.
      int steps = 0;
      for (; steps < kSteps && on_row(row_key); ++steps) it->Next();
      if (steps == kSteps && on_row(row_key)) it->Seek(PrefixSuccessor(row_key));
    }
  } else {
    for (it->SeekToLast(); it->Valid();) {
      // Land on the row's versions from its oldest; resolve seeks to the visible one.
      ASSIGN_OR_RETURN(auto d, DecodeVersionKey(it->key()));
      std::string row_key(d.row_key);
      it->Seek(EncodeVersionKey(row_key, kMaxTimestamp));
      ASSIGN_OR_RETURN(row_key, resolve(&visible));
      if (visible) {
        if (out.items.size() == o.limit) {
          out.next = out.items.back().key;
          break;
        }
        out.items.push_back(std::move(*visible));
      }
      it->SeekForPrev(row_key);
    }
  }
  RETURN_IF_ERROR(it->status());
  return out;
}

namespace {

class VersionGcFilter final : public storage::KeyFilter {
 public:
  explicit VersionGcFilter(Timestamp safe_point) : safe_point_(safe_point) {}

  bool Keep(std::string_view key, std::string_view) override {
    auto d = DecodeVersionKey(key);
    if (!d.ok()) return true;  // not a row version: not ours to judge
    if (d->row_key != row_) {
      row_.assign(d->row_key);
      kept_below_ = false;
    }
    if (d->ts > safe_point_) return true;
    if (!kept_below_) {
      kept_below_ = true;  // the newest version at or below the safe point
      return true;
    }
    return false;
  }

 private:
  const Timestamp safe_point_;  // fixed for one compaction run
  std::string row_;
  bool kept_below_ = false;
};

class VersionGcFilterFactory final : public storage::KeyFilterFactory {
 public:
  explicit VersionGcFilterFactory(std::shared_ptr<const SafePoint> sp) : sp_(std::move(sp)) {}
  std::unique_ptr<storage::KeyFilter> NewFilter() override {
    return std::make_unique<VersionGcFilter>(sp_->ts.load());
  }

 private:
  std::shared_ptr<const SafePoint> sp_;
};

}  // namespace

std::shared_ptr<storage::KeyFilterFactory> NewVersionGcFilterFactory(
    std::shared_ptr<const SafePoint> safe_point) {
  return std::make_shared<VersionGcFilterFactory>(std::move(safe_point));
}

}  // namespace gojodb::mvcc
