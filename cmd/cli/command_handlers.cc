// What each command does once its line is parsed: build the request, call the backend,
// print the result or the error, return the exit status.
#include <algorithm>
#include <iostream>
#include <iterator>

#include "cmd/cli/command_args.h"
#include "cmd/cli/commands.h"
#include "cmd/cli/format.h"
#include "cmd/cli/shell.h"

namespace gojodb::cli {
namespace {

kv::Consistency ParseConsistency(const std::string& s) {
  if (s == "snapshot") return kv::Consistency::kSnapshot;
  if (s == "stale") return kv::Consistency::kStale;
  return kv::Consistency::kLinearizable;
}

// "by_city:city" or "by_name_age:name,age:unique".
Result<kv::IndexSpec> ParseIndexSpec(const std::string& text) {
  kv::IndexSpec spec;
  const size_t colon = text.find(':');
  if (colon == std::string::npos || colon == 0) {
    return Status::InvalidArgument("--index wants NAME:FIELD[,FIELD...][:unique], got '" + text +
                                   "'");
  }
  spec.name = text.substr(0, colon);
  std::string fields = text.substr(colon + 1);
  const std::string kUnique = ":unique";
  if (fields.size() >= kUnique.size() &&
      fields.compare(fields.size() - kUnique.size(), kUnique.size(), kUnique) == 0) {
    spec.unique = true;
    fields.resize(fields.size() - kUnique.size());
  }
  size_t pos = 0;
  while (pos <= fields.size()) {
    size_t comma = fields.find(',', pos);
    if (comma == std::string::npos) comma = fields.size();
    std::string field = fields.substr(pos, comma - pos);
    if (field.empty() || field.find(':') != std::string::npos) {
      return Status::InvalidArgument("--index wants NAME:FIELD[,FIELD...][:unique], got '" + text +
                                     "'");
    }
    spec.fields.push_back(std::move(field));
    pos = comma + 1;
  }
  return spec;
}
}  // namespace

int Cli::TxnOnly(const Args& a, const std::string& command) {
  if (a.has_if_version || !a.request_id.empty()) {
    return Usage(command,
                 "--if-version and --request-id do not apply inside a transaction (its writes "
                 "commit together, and conflict if their keys changed after begin)");
  }
  if (a.has_at || a.has_consistency) {
    return Usage(command, "a transaction reads at its own snapshot: no --at or --consistency");
  }
  if (a.g.addr != txn_->addr) {
    return Usage(command, "the open transaction is on " + txn_->addr + ", not " + a.g.addr);
  }
  return 0;
}

int Cli::ShellBegin() {
  if (txn_) return Usage("begin", "a transaction is already open: commit or rollback it first");
  auto backend = BackendFor(defaults_.addr, defaults_.timeout_ms);
  if (!backend.ok()) return Fail(backend.status());
  auto h = (*backend)->kv().BeginTxn();
  if (!h.ok()) return Fail(h.status());
  txn_ = OpenTxn{h->id, defaults_.addr, defaults_.timeout_ms};
  if (defaults_.output == OutputMode::kJson) {
    Print("{\"txn\":\"" + h->id + "\",\"start_ts\":" + std::to_string(h->start_ts) + "}\n");
  } else {
    Print("transaction " + h->id + " begun at " + std::to_string(h->start_ts) + "\n");
  }
  return 0;
}

int Cli::ShellCommit() {
  if (!txn_) return Usage("commit", "no transaction is open (begin one)");
  const OpenTxn t = *txn_;
  txn_.reset();  // ended whatever the outcome
  auto backend = BackendFor(t.addr, t.timeout_ms);
  if (!backend.ok()) return Fail(backend.status());
  auto ts = (*backend)->kv().CommitTxn(t.id);
  if (!ts.ok()) return Fail(ts.status());
  if (defaults_.output == OutputMode::kJson) {
    Print("{\"commit_ts\":" + std::to_string(*ts) + "}\n");
  } else {
    Print("committed at " + std::to_string(*ts) + "\n");
  }
  return 0;
}

int Cli::ShellRollback() {
  if (!txn_) return Usage("rollback", "no transaction is open");
  const OpenTxn t = *txn_;
  txn_.reset();
  auto backend = BackendFor(t.addr, t.timeout_ms);
  if (!backend.ok()) return Fail(backend.status());
  if (Status s = (*backend)->kv().RollbackTxn(t.id); !s.ok()) return Fail(s);
  if (defaults_.output == OutputMode::kJson) {
    Print("{\"rolled_back\":\"" + t.id + "\"}\n");
  } else {
    Print("rolled back\n");
  }
  return 0;
}

int Cli::DoPut(const Args& a) {
  if (a.key.empty()) return Usage("put", "KEY must not be empty");
  std::string value = a.value;
  if (value == "-") {
    if (in_shell_) {
      return Usage("put", "VALUE '-' reads stdin, which the shell is reading; quote the value");
    }
    value.assign(std::istreambuf_iterator<char>(*io_.in), std::istreambuf_iterator<char>());
  }
  if (txn_) {
    if (int u = TxnOnly(a, "put"); u != 0) return u;
    auto backend = BackendFor(txn_->addr, txn_->timeout_ms);
    if (!backend.ok()) return Fail(backend.status());
    Status s = (*backend)->kv().TxnWrite(
        txn_->id, {kv::BatchOp::Kind::kPut, a.g.collection, a.key, value, std::nullopt});
    if (!s.ok()) return Fail(s);
    Print(a.g.output == OutputMode::kJson ? "{\"buffered\":true}\n" : "OK (in the transaction)\n");
    return 0;
  }
  kv::PutRequest req;
  req.collection = a.g.collection;
  req.key = a.key;
  req.value = std::move(value);
  if (a.has_if_version) req.if_version = a.if_version;
  req.request_id = a.request_id;
  auto backend = BackendFor(a.g.addr, a.g.timeout_ms);
  if (!backend.ok()) return Fail(backend.status());
  auto r = (*backend)->kv().Put(req);
  if (!r.ok()) return Fail(r.status());
  Print(RenderPut(a.g.output, a.key, *r));
  return 0;
}

int Cli::DoGet(const Args& a) {
  if (a.key.empty()) return Usage("get", "KEY must not be empty");
  if (txn_) {
    if (int u = TxnOnly(a, "get"); u != 0) return u;
    auto backend = BackendFor(txn_->addr, txn_->timeout_ms);
    if (!backend.ok()) return Fail(backend.status());
    return PrintGot(a, (*backend)->kv().TxnGet(txn_->id, {a.g.collection, a.key}));
  }
  kv::GetRequest req;
  req.collection = a.g.collection;
  req.key = a.key;
  req.consistency = ParseConsistency(a.consistency);
  if (a.has_at) {
    if (a.has_consistency && req.consistency != kv::Consistency::kSnapshot) {
      return Usage("get",
                   "--at reads a snapshot; it does not go with --consistency " + a.consistency);
    }
    req.consistency = kv::Consistency::kSnapshot;
    req.at = a.at;
  }
  auto backend = BackendFor(a.g.addr, a.g.timeout_ms);
  if (!backend.ok()) return Fail(backend.status());
  return PrintGot(a, (*backend)->kv().Get(req));
}

int Cli::PrintGot(const Args& a, const Result<kv::GetResult>& r) {
  if (!r.ok()) return Fail(r.status());
  if (!r->found) {
    return Fail(Status::NotFound("key '" + EscapeForDisplay(a.key) +
                                 "' does not exist in collection '" + a.g.collection + "'"));
  }
  Print(RenderGet(a.g.output, a.key, *r, io_.out_is_tty));
  return 0;
}

int Cli::DoDelete(const Args& a) {
  if (a.key.empty()) return Usage("delete", "KEY must not be empty");
  if (txn_) {
    if (int u = TxnOnly(a, "delete"); u != 0) return u;
    auto backend = BackendFor(txn_->addr, txn_->timeout_ms);
    if (!backend.ok()) return Fail(backend.status());
    Status s = (*backend)->kv().TxnWrite(
        txn_->id, {kv::BatchOp::Kind::kDelete, a.g.collection, a.key, "", std::nullopt});
    if (!s.ok()) return Fail(s);
    Print(a.g.output == OutputMode::kJson ? "{\"buffered\":true}\n" : "OK (in the transaction)\n");
    return 0;
  }
  kv::DeleteRequest req;
  req.collection = a.g.collection;
  req.key = a.key;
  if (a.has_if_version) req.if_version = a.if_version;
  req.request_id = a.request_id;
  auto backend = BackendFor(a.g.addr, a.g.timeout_ms);
  if (!backend.ok()) return Fail(backend.status());
  auto r = (*backend)->kv().Delete(req);
  if (!r.ok()) return Fail(r.status());
  Print(RenderDelete(a.g.output, a.key, *r));
  return 0;
}

int Cli::DoScan(const Args& a) {
  if (a.has_limit && a.limit == 0) return Usage("scan", "--limit must be at least 1");
  kv::ScanRequest req;
  req.collection = a.g.collection;
  req.start = a.start;
  req.end = a.end;
  req.prefix = a.prefix;
  req.reverse = a.reverse;
  req.consistency = ParseConsistency(a.consistency);
  if (a.has_at) {
    if (a.has_consistency && req.consistency != kv::Consistency::kSnapshot) {
      return Usage("scan",
                   "--at reads a snapshot; it does not go with --consistency " + a.consistency);
    }
    req.consistency = kv::Consistency::kSnapshot;
    req.at = a.at;
  }
  if (txn_) {
    if (int u = TxnOnly(a, "scan"); u != 0) return u;
    req.consistency = kv::Consistency::kLinearizable;
    req.at = 0;
  }
  auto backend = BackendFor(txn_ ? txn_->addr : a.g.addr, txn_ ? txn_->timeout_ms : a.g.timeout_ms);
  if (!backend.ok()) return Fail(backend.status());
  kv::KvService& kv = (*backend)->kv();
  const size_t page_max = std::max<size_t>(1, kv.limits().max_scan_limit);
  const bool follow = a.all || a.has_limit;  // read more than one page

  kv::ScanResult out;
  bool first = true;
  while (true) {
    if (a.has_limit) req.limit = std::min(a.limit - out.items.size(), page_max);
    // Inside a transaction every page reads its snapshot and its own writes.
    auto r = txn_ ? kv.TxnScan(txn_->id, req) : kv.Scan(req);
    if (!r.ok()) return Fail(r.status());
    if (first) out.read_ts = r->read_ts;
    first = false;
    for (auto& item : r->items) out.items.push_back(std::move(item));
    out.next = r->next;
    if (!follow || !r->next || (a.has_limit && out.items.size() >= a.limit)) break;
    // Later pages read the same snapshot as the first.
    if (!txn_) {
      req.consistency = kv::Consistency::kSnapshot;
      req.at = out.read_ts;
    }
    (a.reverse ? req.end : req.start) = *r->next;
  }
  Print(RenderScan(a.g.output, out, a.reverse));
  return 0;
}

int Cli::DoCollectionCreate(const Args& a) {
  kv::CollectionSpec spec;
  spec.name = a.name;
  spec.schema_json = a.schema;
  for (const auto& text : a.indexes) {
    auto index = ParseIndexSpec(text);
    if (!index.ok()) return Usage("collections create", index.status().message());
    spec.indexes.push_back(std::move(*index));
  }
  auto backend = BackendFor(a.g.addr, a.g.timeout_ms);
  if (!backend.ok()) return Fail(backend.status());
  auto r = (*backend)->kv().CreateCollection(spec);
  if (!r.ok()) return Fail(r.status());
  if (a.g.output == OutputMode::kTable) {
    Print("created collection '" + EscapeForDisplay(r->name) + "' (id " + std::to_string(r->id) +
          ")\n");
  } else {
    Print(RenderCollection(a.g.output, *r));
  }
  return 0;
}

int Cli::DoCollectionList(const Args& a) {
  auto backend = BackendFor(a.g.addr, a.g.timeout_ms);
  if (!backend.ok()) return Fail(backend.status());
  auto r = (*backend)->kv().ListCollections();
  if (!r.ok()) return Fail(r.status());
  Print(RenderCollectionList(a.g.output, *r));
  return 0;
}

int Cli::DoCollectionDescribe(const Args& a) {
  auto backend = BackendFor(a.g.addr, a.g.timeout_ms);
  if (!backend.ok()) return Fail(backend.status());
  auto r = (*backend)->kv().DescribeCollection(a.name);
  if (!r.ok()) return Fail(r.status());
  Print(RenderCollection(a.g.output, *r));
  return 0;
}

int Cli::DoCollectionDrop(const Args& a) {
  auto backend = BackendFor(a.g.addr, a.g.timeout_ms);
  if (!backend.ok()) return Fail(backend.status());
  Status s = (*backend)->kv().DropCollection(a.name);
  if (!s.ok()) return Fail(s);
  Print(RenderDropped(a.g.output, a.name));
  return 0;
}

int Cli::DoIndexAdd(const Args& a) {
  auto index = ParseIndexSpec(a.index_spec);
  if (!index.ok()) return Usage("collections add-index", index.status().message());
  auto backend = BackendFor(a.g.addr, a.g.timeout_ms);
  if (!backend.ok()) return Fail(backend.status());
  auto r = (*backend)->kv().CreateIndex(a.name, *index, std::chrono::milliseconds(a.wait_ms));
  if (!r.ok()) return Fail(r.status());
  Print(RenderCollection(a.g.output, *r));
  return 0;
}

int Cli::DoIndexDrop(const Args& a) {
  auto backend = BackendFor(a.g.addr, a.g.timeout_ms);
  if (!backend.ok()) return Fail(backend.status());
  auto r = (*backend)->kv().DropIndex(a.name, a.index_name);
  if (!r.ok()) return Fail(r.status());
  Print(RenderCollection(a.g.output, *r));
  return 0;
}

int Cli::DoClusterStatus(const Args& a) {
  auto backend = BackendFor(a.g.addr, a.g.timeout_ms);
  if (!backend.ok()) return Fail(backend.status());
  auto r = (*backend)->ClusterStatus();
  if (!r.ok()) return Fail(r.status());
  Print(RenderClusterStatus(a.g.output, *r));
  return 0;
}

int Cli::DoVersion(const Args& a) {
  if (a.client_only) {
    Print(RenderVersion(a.g.output, version_, "", ""));
    return 0;
  }
  auto backend = BackendFor(a.g.addr, a.g.timeout_ms);
  if (!backend.ok()) return Fail(backend.status());
  auto r = (*backend)->ClusterStatus();
  if (!r.ok()) {
    Print(RenderVersion(a.g.output, version_, "", ""));
    return Fail(r.status());
  }
  std::string server = r->version().empty() ? "(unknown)" : r->version();
  Print(RenderVersion(a.g.output, version_, server, r->mode()));
  return 0;
}

int Cli::DoShell(const Args& a) {
  // The shell starts from this line's flags: `gojodb --collection c shell`.
  defaults_ = a.g;
  return RunShell(*this);
}

}  // namespace gojodb::cli
