// The document commands: query, aggregate, import and export (docs/cli.md).
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "cmd/cli/command_args.h"
#include "cmd/cli/commands.h"
#include "cmd/cli/format.h"
#include "core/kv/csv.h"
#include "core/kv/ndjson.h"

namespace gojodb::cli {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

// "a,b,c" -> {a, b, c}; an empty part is an error.
Result<std::vector<std::string>> SplitList(const std::string& text, const std::string& flag) {
  std::vector<std::string> out;
  if (text.empty()) return out;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    if (comma == std::string::npos) comma = text.size();
    if (comma == pos) {
      return Status::InvalidArgument(flag + " wants names separated by commas, got '" + text + "'");
    }
    out.push_back(text.substr(pos, comma - pos));
    pos = comma + 1;
  }
  return out;
}

// ndjson or csv: the flag, else the file's extension.
std::string FormatOf(const std::string& flag, const std::string& file) {
  if (!flag.empty()) return flag;
  const std::string ext = std::filesystem::path(file).extension().string();
  return ext == ".csv" || ext == ".CSV" ? "csv" : "ndjson";
}

// Draws "[=====>    ]  42%  12,345 docs  6,789/s" on a terminal, at most ten times a second.
class Progress {
 public:
  Progress(std::ostream* err, bool enabled, uint64_t total_bytes)
      : err_(err), enabled_(enabled), total_(total_bytes), start_(Clock::now()) {}
  void Update(uint64_t bytes, uint64_t docs, bool force = false) {
    if (!enabled_) return;
    const auto now = Clock::now();
    if (!force && now - last_ < std::chrono::milliseconds(100)) return;
    last_ = now;
    const double secs = std::chrono::duration<double>(now - start_).count();
    std::string line = "\r";
    if (total_ > 0) {
      const double f = std::min(1.0, static_cast<double>(bytes) / static_cast<double>(total_));
      const int width = 30, filled = static_cast<int>(f * width);
      line += "[" + std::string(filled, '=') + (filled < width ? ">" : "") +
              std::string(std::max(0, width - filled - 1), ' ') + "] " +
              std::to_string(static_cast<int>(f * 100)) + "%  ";
    }
    line += std::to_string(docs) + " docs";
    if (secs > 0.5) line += "  " + std::to_string(static_cast<uint64_t>(docs / secs)) + "/s";
    *err_ << line << "   " << std::flush;
    drawn_ = true;
  }
  // Clears the bar so that what follows starts on a clean line.
  void Done() {
    if (drawn_) *err_ << "\r" << std::string(72, ' ') << "\r" << std::flush;
    drawn_ = false;
  }

 private:
  std::ostream* err_;
  bool enabled_;
  uint64_t total_;
  Clock::time_point start_, last_{};
  bool drawn_ = false;
};

// Sends decoded lines in messages of at most `batch` records and about 4 MiB, each with the
// refusals up to its last line, over streams of at most kStreamRecords records each (a stream has a
// deadline); the streams' summaries are merged.
class Sender {
 public:
  static constexpr uint64_t kStreamRecords = 50000;
  static constexpr size_t kMessageBytes = 4u << 20;
  using Open = std::function<Result<std::unique_ptr<kv::IngestStream>>()>;

  Sender(Open open, size_t batch) : open_(std::move(open)), batch_(batch) {}

  // Sends whole messages out of `pending` (everything when `all`), leaving the rest.
  Status Send(kv::NdjsonRecords* pending, bool all) {
    size_t used = 0, used_errors = 0;
    while (true) {
      // The next message: at most batch_ records and about kMessageBytes (at least one).
      size_t n = 0, bytes = 0;
      while (used + n < pending->records.size() && n < batch_) {
        const auto& r = pending->records[used + n];
        if (n > 0 && bytes + r.key.size() + r.value.size() > kMessageBytes) break;
        bytes += r.key.size() + r.value.size();
        ++n;
      }
      const bool full = used + n < pending->records.size() || n == batch_;
      if (!full && !(all && (n > 0 || used_errors < pending->errors.size() ||
                             pending->last_line > sent_line_))) {
        break;
      }
      std::vector<kv::IngestRecord> records(
          std::make_move_iterator(pending->records.begin() + used),
          std::make_move_iterator(pending->records.begin() + used + n));
      used += n;
      const bool last = all && used == pending->records.size();
      const uint64_t upto = last ? pending->last_line : records.back().line;
      std::vector<kv::IngestError> errors;
      while (used_errors < pending->errors.size() && pending->errors[used_errors].line <= upto) {
        errors.push_back(std::move(pending->errors[used_errors++]));
      }
      if (stream_ && in_stream_ >= kStreamRecords) RETURN_IF_ERROR(EndStream());
      if (!stream_) {
        ASSIGN_OR_RETURN(stream_, open_());
      }
      RETURN_IF_ERROR(stream_->Add(std::move(records), std::move(errors), upto));
      sent_ += n;
      in_stream_ += n;
      sent_line_ = std::max(sent_line_, upto);
      if (last) break;
    }
    pending->records.erase(pending->records.begin(), pending->records.begin() + used);
    pending->errors.erase(pending->errors.begin(), pending->errors.begin() + used_errors);
    return Status::OK();
  }

  // Ends the last stream; the merged summary.
  Result<kv::IngestSummary> Finish() {
    if (!stream_) {  // an empty input: one empty stream
      ASSIGN_OR_RETURN(stream_, open_());
    }
    RETURN_IF_ERROR(EndStream());
    return total_;
  }
  uint64_t sent() const { return sent_; }

 private:
  Status EndStream() {
    ASSIGN_OR_RETURN(auto s, stream_->Finish());
    stream_.reset();
    in_stream_ = 0;
    total_.lines_done = std::max(total_.lines_done, s.lines_done);
    total_.written += s.written;
    total_.skipped += s.skipped;
    total_.failed += s.failed;
    for (auto& e : s.errors) {
      if (total_.errors.size() < kv::IngestSession::kMaxErrorsListed) {
        total_.errors.push_back(std::move(e));
      }
    }
    return Status::OK();
  }

  Open open_;
  size_t batch_;
  std::unique_ptr<kv::IngestStream> stream_;
  uint64_t sent_ = 0, in_stream_ = 0, sent_line_ = 0;
  kv::IngestSummary total_;
};

// --at and --consistency (has_at, at, has_consistency, consistency) onto a read's
// timestamp; an error message for a pair that does not go together.
std::optional<std::string> ReadPointOf(bool has_at, uint64_t at_flag, bool has_consistency,
                                       const std::string& consistency_flag,
                                       kv::Consistency* consistency, uint64_t* at) {
  if (has_at) {
    if (has_consistency && consistency_flag != "snapshot") {
      return "--at reads a snapshot; it does not go with --consistency " + consistency_flag;
    }
    *consistency = kv::Consistency::kSnapshot;
    *at = at_flag;
  } else if (consistency_flag == "snapshot") {
    return "--consistency snapshot needs --at";
  }
  return std::nullopt;
}

}  // namespace

int Cli::DoQuery(const Args& a) {
  if (txn_) return Usage("query", "a query reads at its own snapshot, not in a transaction");
  if (a.has_limit && a.limit == 0) return Usage("query", "--limit must be at least 1");
  kv::QueryRequest q;
  q.collection = a.g.collection;
  q.filter_json = a.filter;
  for (const auto& s : a.sort) {
    std::string field = s;
    bool desc = false;
    const size_t colon = s.rfind(':');
    if (colon != std::string::npos &&
        (s.substr(colon + 1) == "desc" || s.substr(colon + 1) == "asc")) {
      desc = s.substr(colon + 1) == "desc";
      field = s.substr(0, colon);
    }
    if (field.empty()) return Usage("query", "--sort wants FIELD or FIELD:desc, got '" + s + "'");
    q.sort.emplace_back(field, desc);
  }
  auto fields = SplitList(a.fields, "--fields");
  if (!fields.ok()) return Usage("query", fields.status().message());
  q.projection = *fields;
  q.cursor = a.cursor;
  q.explain = a.explain;
  if (auto bad =
          ReadPointOf(a.has_at, a.at, a.has_consistency, a.consistency, &q.consistency, &q.at)) {
    return Usage("query", *bad);
  }
  auto backend = BackendFor(a.g.addr, a.g.timeout_ms);
  if (!backend.ok()) return Fail(backend.status());
  kv::KvService& kv = (*backend)->kv();
  const size_t page_max = std::max<size_t>(1, kv.limits().max_scan_limit);
  const bool follow = a.all || a.has_limit;
  kv::QueryResult out;
  bool first = true;
  while (true) {
    if (a.has_limit) q.limit = std::min(a.limit - out.items.size(), page_max);
    auto r = kv.Query(q);
    if (!r.ok()) return Fail(r.status());
    if (first) {
      out.read_ts = r->read_ts;
      out.plan_json = r->plan_json;
    }
    first = false;
    for (auto& item : r->items) out.items.push_back(std::move(item));
    out.cursor = r->cursor;
    if (!follow || r->cursor.empty() || (a.has_limit && out.items.size() >= a.limit)) break;
    q.cursor = r->cursor;  // the same snapshot as the first page
    q.explain = false;
  }
  Print(RenderQuery(a.g.output, out));
  return 0;
}

int Cli::DoAggregate(const Args& a) {
  if (txn_)
    return Usage("aggregate", "an aggregation reads at its own snapshot, not in a transaction");
  kv::AggregateRequest req;
  req.collection = a.g.collection;
  req.filter_json = a.filter;
  auto group_by = SplitList(a.group_by, "--group-by");
  if (!group_by.ok()) return Usage("aggregate", group_by.status().message());
  if (!group_by->empty()) req.group_by_json = json(*group_by).dump();
  json aggs = json::object();
  std::vector<std::string> names;
  for (const auto& text : a.aggs) {
    // NAME=OP[:FIELD]
    const size_t eq = text.find('=');
    const std::string usage =
        "--agg wants NAME=OP[:FIELD], as n=count or total=sum:price; got '" + text + "'";
    if (eq == std::string::npos || eq == 0 || eq + 1 == text.size())
      return Usage("aggregate", usage);
    const std::string name = text.substr(0, eq);
    std::string op = text.substr(eq + 1), field = "*";
    if (const size_t colon = op.find(':'); colon != std::string::npos) {
      field = op.substr(colon + 1);
      op.resize(colon);
      if (field.empty() || op.empty()) return Usage("aggregate", usage);
    }
    if (aggs.contains(name)) return Usage("aggregate", "--agg names '" + name + "' twice");
    aggs[name] = {{op, field}};
    names.push_back(name);
  }
  req.aggregates_json = aggs.dump();
  req.explain = a.explain;
  if (auto bad = ReadPointOf(a.has_at, a.at, a.has_consistency, a.consistency, &req.consistency,
                             &req.at)) {
    return Usage("aggregate", *bad);
  }
  auto backend = BackendFor(a.g.addr, a.g.timeout_ms);
  if (!backend.ok()) return Fail(backend.status());
  auto r = (*backend)->kv().Aggregate(req);
  if (!r.ok()) return Fail(r.status());
  Print(RenderAggregate(a.g.output, *r, *group_by, names));
  return 0;
}

int Cli::DoImport(const Args& a) {
  if (txn_) return Usage("import", "an import is not part of a transaction");
  if (a.key_field.empty()) return Usage("import", "--key-field must not be empty");
  if (a.ingest_id.size() > 128) return Usage("import", "--ingest-id takes at most 128 bytes");
  const bool from_stdin = a.file == "-";
  if (from_stdin && in_shell_) return Usage("import", "the shell reads stdin; name a file");
  const std::string format = FormatOf(a.format, a.file);
  std::ifstream file;
  uint64_t total = 0;
  if (!from_stdin) {
    file.open(a.file, std::ios::binary);
    if (!file) return Fail(Status::NotFound("cannot open '" + a.file + "' for reading"));
    std::error_code ec;
    total = std::filesystem::file_size(a.file, ec);
    if (ec) total = 0;
  }
  std::istream& in = from_stdin ? *io_.in : file;
  auto backend = BackendFor(a.g.addr, a.g.timeout_ms);
  if (!backend.ok()) return Fail(backend.status());
  Backend* b = *backend;
  Progress progress(io_.err, io_.err_is_tty, total);
  Sender sender([&] { return b->OpenIngest(a.g.collection, a.ingest_id); }, a.batch);
  kv::CsvDecoder csv({a.key_field, a.strings_only});
  kv::NdjsonRecords pending;
  std::string carry;       // NDJSON: a line not yet ended
  uint64_t next_line = 1;  // NDJSON: the number of carry's line
  uint64_t read_bytes = 0;
  std::string block(1u << 20, '\0');
  // NDJSON lines in `text` (all of them, ended or not) decoded onto `pending`.
  auto decode_ndjson = [&](std::string_view text) -> Status {
    ASSIGN_OR_RETURN(auto d, kv::DecodeNdjson(text, next_line, a.key_field));
    next_line = d.last_line + 1;
    for (auto& r : d.records) pending.records.push_back(std::move(r));
    for (auto& e : d.errors) pending.errors.push_back(std::move(e));
    pending.lines += d.lines;
    if (d.lines > 0) pending.last_line = d.last_line;
    return Status::OK();
  };
  Status s;
  while (s.ok() && in) {
    in.read(block.data(), static_cast<std::streamsize>(block.size()));
    const std::string_view got(block.data(), static_cast<size_t>(in.gcount()));
    if (got.empty()) break;
    read_bytes += got.size();
    if (format == "csv") {
      s = csv.Feed(got, &pending);
    } else {
      carry.append(got);
      const size_t end = carry.rfind('\n');
      if (end != std::string::npos) {
        s = decode_ndjson(std::string_view(carry).substr(0, end + 1));
        carry.erase(0, end + 1);
      }
    }
    if (s.ok()) s = sender.Send(&pending, false);
    progress.Update(read_bytes, sender.sent());
  }
  if (s.ok() && in.bad()) s = Status::Internal("reading '" + a.file + "' failed");
  if (s.ok()) s = format == "csv" ? csv.Finish(&pending) : decode_ndjson(carry);
  if (s.ok()) s = sender.Send(&pending, true);
  progress.Update(read_bytes, sender.sent(), /*force=*/true);
  progress.Done();
  if (!s.ok()) return Fail(s);
  auto summary = sender.Finish();
  if (!summary.ok()) return Fail(summary.status());
  Print(RenderImport(a.g.output, from_stdin ? "stdin" : a.file, *summary, 10));
  return summary->failed == 0 ? 0 : static_cast<int>(ExitCode::kError);
}

int Cli::DoExport(const Args& a) {
  if (txn_) return Usage("export", "an export reads at its own snapshot, not in a transaction");
  if (a.key_field.empty()) return Usage("export", "--key-field must not be empty");
  const bool to_stdout = a.file == "-";
  const std::string format = FormatOf(a.format, a.file);
  auto fields = SplitList(a.fields, "--fields");
  if (!fields.ok()) return Usage("export", fields.status().message());
  kv::QueryRequest q;
  q.collection = a.g.collection;
  q.filter_json = a.filter;
  q.limit = 1000;
  if (format == "ndjson") q.projection = *fields;
  if (auto bad =
          ReadPointOf(a.has_at, a.at, a.has_consistency, a.consistency, &q.consistency, &q.at)) {
    return Usage("export", *bad);
  }
  auto backend = BackendFor(a.g.addr, a.g.timeout_ms);
  if (!backend.ok()) return Fail(backend.status());
  kv::KvService& kv = (*backend)->kv();

  // Every page of the query, at one snapshot; `each` sees each document.
  uint64_t read_ts = 0;
  // Parsed keeping the stored field order, for CSV columns in the order first seen.
  using Doc = nlohmann::ordered_json;
  auto run = [&](const std::function<Status(const kv::KeyValue&, const Doc&)>& each) -> Status {
    kv::QueryRequest page = q;
    if (read_ts != 0) {  // a second pass reads what the first read
      page.consistency = kv::Consistency::kSnapshot;
      page.at = read_ts;
    }
    while (true) {
      ASSIGN_OR_RETURN(auto r, kv.Query(page));
      read_ts = r.read_ts;
      for (const auto& item : r.items) {
        Doc doc = Doc::parse(item.value, nullptr, false);
        if (!doc.is_object()) {
          return Status::InvalidArgument("the value of key '" + EscapeForDisplay(item.key) +
                                         "' is not a JSON document; export writes documents");
        }
        RETURN_IF_ERROR(each(item, doc));
      }
      if (r.cursor.empty()) return Status::OK();
      page.cursor = r.cursor;
    }
  };
  // The document's key field must be absent or hold its key.
  auto key_check = [&](const kv::KeyValue& item, const Doc& doc) -> Result<bool> {
    auto k = doc.find(a.key_field);
    if (k == doc.end()) return false;
    if ((k->is_string() && k->get<std::string>() == item.key) ||
        (k->is_number_integer() && k->dump() == item.key)) {
      return true;
    }
    return Status::InvalidArgument("document '" + EscapeForDisplay(item.key) + "' has " +
                                   a.key_field + " " + k->dump().substr(0, 64) +
                                   ", not its key: export with another --key-field");
  };

  std::vector<std::string> columns;
  if (format == "csv") {
    if (!fields->empty()) {
      for (const auto& f : *fields) {
        if (f != a.key_field) columns.push_back(f);
      }
    } else {
      // First pass: every top-level field, in the order first seen.
      std::set<std::string> seen;
      Status s = run([&](const kv::KeyValue&, const Doc& doc) {
        for (const auto& [k, v] : doc.items()) {
          if (k != a.key_field && seen.insert(k).second) columns.push_back(k);
        }
        return Status::OK();
      });
      if (!s.ok()) return Fail(s);
    }
  }
  std::ofstream file;
  if (!to_stdout) {
    file.open(a.file, std::ios::binary | std::ios::trunc);
    if (!file) return Fail(Status::InvalidArgument("cannot open '" + a.file + "' for writing"));
  }
  std::ostream& out = to_stdout ? *io_.out : file;
  if (format == "csv") {
    out << kv::CsvText(a.key_field);
    for (const auto& c : columns) out << ',' << kv::CsvText(c);
    out << '\n';
  }
  Progress progress(io_.err, io_.err_is_tty && !(to_stdout && io_.out_is_tty), 0);
  uint64_t written = 0;
  Status s = run([&](const kv::KeyValue& item, const Doc& doc) -> Status {
    ASSIGN_OR_RETURN(bool has_key, key_check(item, doc));
    if (format == "csv") {
      out << kv::CsvText(item.key);
      for (const auto& c : columns) {
        out << ',';
        if (auto v = doc.find(c); v != doc.end()) out << kv::CsvField(v->dump());
      }
      out << '\n';
    } else if (has_key) {
      out << item.value << '\n';
    } else {
      // The key spliced in first; the stored text, and so its field order, kept.
      const size_t brace = item.value.find('{');
      std::string rest = item.value.substr(brace + 1);
      const bool empty = doc.empty();
      out << '{' << json(a.key_field).dump() << ':' << json(item.key).dump() << (empty ? "}" : ",")
          << (empty ? "" : rest) << '\n';
    }
    ++written;
    progress.Update(0, written);
    return out ? Status::OK() : Status::Internal("writing '" + a.file + "' failed");
  });
  progress.Update(0, written, true);
  progress.Done();
  out.flush();
  if (s.ok() && !out) s = Status::Internal("writing '" + a.file + "' failed");
  if (!s.ok()) return Fail(s);
  std::string summary;
  if (a.g.output == OutputMode::kJson) {
    summary = DumpJson({{"exported", written},
                        {"collection", a.g.collection},
                        {"file", a.file},
                        {"format", format},
                        {"read_ts", read_ts}}) +
              "\n";
  } else {
    summary = "exported " + std::to_string(written) + " documents from " + a.g.collection + " to " +
              (to_stdout ? "stdout" : a.file) + " (" + format + ", at " + std::to_string(read_ts) +
              ")\n";
  }
  if (to_stdout) {
    *io_.err << summary << std::flush;
  } else {
    Print(summary);
  }
  return 0;
}

}  // namespace gojodb::cli
