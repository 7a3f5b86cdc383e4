#include "tools/bench/server_target.h"

#include <chrono>
#include <thread>

#include "pkg/client/client.h"
#include "tools/bench/workload.h"

namespace gojodb::bench {
namespace {

class ServerConnection final : public Connection {
 public:
  ServerConnection(std::shared_ptr<client::Client> client, std::string collection)
      : client_(std::move(client)), collection_(std::move(collection)) {}

  OpResult Read(const std::string& key) override {
    auto r = client_->Get({.collection = collection_, .key = key});
    if (!r.ok()) return OpResult::Error("get " + key + ": " + r.status().ToString());
    return r->found ? OpResult::Ok() : OpResult::NotFound();
  }

  OpResult Update(const std::string& key, const std::string& value) override {
    return Write("put", key, value);
  }

  OpResult Insert(const std::string& key, const std::string& value) override {
    return Write("insert", key, value);
  }

  OpResult Scan(const std::string& start, uint64_t count) override {
    kv::ScanRequest req;
    req.collection = collection_;
    req.start = start;
    req.limit = count;
    auto r = client_->Scan(req);
    if (!r.ok()) return OpResult::Error("scan from " + start + ": " + r.status().ToString());
    return OpResult::Ok();
  }

  OpResult ReadModifyWrite(const std::string& key, const std::string& value) override {
    auto got = client_->Get({.collection = collection_, .key = key});
    if (!got.ok()) return OpResult::Error("get " + key + ": " + got.status().ToString());
    if (!got->found) return OpResult::NotFound();
    auto put = client_->Put(
        {.collection = collection_, .key = key, .value = value, .if_version = got->version});
    if (put.ok()) return OpResult::Ok();
    if (put.status().code() == StatusCode::kFailedPrecondition) return OpResult::Conflict();
    return OpResult::Error("conditional put " + key + ": " + put.status().ToString());
  }

  // Two one-shot transactions: the balances at a snapshot, then both writes conditioned
  // on the versions read (a change in between is a conflict: nothing applies).
  OpResult Transfer(const std::string& from, const std::string& to, int64_t amount,
                    const std::string& padding) override {
    auto read = client_->Txn({.reads = {{collection_, from}, {collection_, to}}});
    if (!read.ok())
      return OpResult::Error("read " + from + ", " + to + ": " + read.status().ToString());
    const kv::GetResult& a = read->reads[0];
    const kv::GetResult& b = read->reads[1];
    if (!a.found || !b.found) return OpResult::NotFound();
    kv::TxnRequest w;
    w.ops.push_back({kv::BatchOp::Kind::kPut, collection_, from,
                     BalanceValue(ParseBalance(a.value) - amount, padding), a.version});
    w.ops.push_back({kv::BatchOp::Kind::kPut, collection_, to,
                     BalanceValue(ParseBalance(b.value) + amount, padding), b.version});
    auto r = client_->Txn(w);
    if (r.ok()) return OpResult::Ok();
    if (r.status().code() == StatusCode::kAborted ||
        r.status().code() == StatusCode::kFailedPrecondition) {
      return OpResult::Conflict();
    }
    return OpResult::Error("transfer " + from + " -> " + to + ": " + r.status().ToString());
  }

 private:
  OpResult Write(const char* what, const std::string& key, const std::string& value) {
    auto r = client_->Put({.collection = collection_, .key = key, .value = value});
    if (!r.ok())
      return OpResult::Error(std::string(what) + " " + key + ": " + r.status().ToString());
    return OpResult::Ok();
  }

  std::shared_ptr<client::Client> client_;
  std::string collection_;
};

}  // namespace

ServerTarget::ServerTarget(ServerTargetOptions options) : options_(std::move(options)) {}
ServerTarget::~ServerTarget() = default;

std::string ServerTarget::Where() const {
  if (options_.controllers.empty()) return "server " + options_.addr;
  std::string out = "cluster (routed by the shard map; controllers ";
  for (size_t i = 0; i < options_.controllers.size(); ++i) {
    out += (i ? "," : "") + options_.controllers[i];
  }
  return out + ")";
}

std::string ServerTarget::Describe() const {
  return Where() + " collection " + options_.collection + " (" + std::to_string(clients_.size()) +
         " gRPC clients)";
}

Status ServerTarget::Open() {
  const int per = std::max(1, options_.threads_per_client);
  const int n = std::max(1, (options_.threads + per - 1) / per);
  for (int i = 0; i < n; ++i) {
    ASSIGN_OR_RETURN(auto c, client::Client::Connect({.addr = options_.addr,
                                                      .controllers = options_.controllers,
                                                      .timeout_ms = options_.timeout_ms}));
    clients_.push_back(std::shared_ptr<client::Client>(std::move(c)));
  }
  // A server that was just started may need a moment before it answers.
  Status ready;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (;;) {
    ready = clients_[0]->Ready();
    if (ready.ok() || std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  if (!ready.ok()) return ready.WithContext(Where() + " is not ready");

  auto described = clients_[0]->DescribeCollection(options_.collection);
  if (described.ok()) return Status::OK();
  if (described.status().code() != StatusCode::kNotFound) {
    return described.status().WithContext("describe collection " + options_.collection);
  }
  auto created = clients_[0]->CreateCollection({.name = options_.collection});
  if (!created.ok() && created.status().code() != StatusCode::kAlreadyExists) {
    return created.status().WithContext("create collection " + options_.collection);
  }
  return Status::OK();
}

std::unique_ptr<Connection> ServerTarget::Connect(int thread) {
  const int per = std::max(1, options_.threads_per_client);
  auto& c = clients_[static_cast<size_t>(thread / per) % clients_.size()];
  return std::make_unique<ServerConnection>(c, options_.collection);
}

}  // namespace gojodb::bench
