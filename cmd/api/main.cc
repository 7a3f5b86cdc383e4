// gojodb-api: the gateway. It serves the HTTP API and the gRPC KV, Catalog and Admin
// services of the standalone server over a cluster: requests go to the storage nodes
// that hold their keys (gateway::ClusterKv), collections and cluster status to the
// controllers. It keeps no data. See docs/architecture/storage-service.md.
//
// --services names the API families this gateway offers (reads, writes, bulk,
// aggregation, graphql); calls of the others are refused with 501 (reason
// SERVICE_NOT_SERVED) over HTTP and gRPC alike (api/gateway/service_filter.h).
//
// Exit status: 0 after a clean shutdown, 1 when the server cannot start (port in use),
// 2 on bad flags or config.
#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <set>

#include "api/gateway/cluster_kv.h"
#include "api/gateway/cluster_status.h"
#include "api/gateway/service_filter.h"
#include "api/grpc/convert.h"
#include "api/grpc/grpc_services.h"
#include "api/http/http_api.h"
#include "api/http/http_server.h"
#include "cmd/common/config.h"
#include "cmd/common/server_main.h"
#include "internal/version.h"

namespace gojodb {
namespace {

constexpr const char* kAllServices = "reads,writes,bulk,aggregation,graphql";

std::vector<server::Setting> ApiSettings() {
  return {
      {"http_addr", "", "HTTP listen address host:port", true},
      {"grpc_addr", "", "gRPC listen address host:port", true},
      {"controllers", "", "the controllers' gRPC addresses: host:port,host:port,...", true},
      {"services", kAllServices,
       "API families to serve: a comma-separated subset of " + std::string(kAllServices) +
           " (the others answer 501 SERVICE_NOT_SERVED)",
       false},
      {"request_timeout_ms", "10000", "how long a request may take, retries included", false},
      {"limits.max_key_bytes", "4096", "largest key accepted", false},
      {"limits.max_value_bytes", "8388608", "largest value accepted", false},
      {"txn.lock_ttl_ms", "3000",
       "how long a transaction's locks outlive a gateway that stopped mid-commit", false},
      {"txn.lock_wait_ms", "500",
       "how long a commit waits for another transaction's lock before it aborts", false},
      {"txn.idle_timeout_ms", "60000", "an interactive transaction idle this long is dropped",
       false},
      {"query.require_limit", "false",
       "refuse queries that give no page limit (400 LIMIT_REQUIRED)", false},
      {"query.walk_budget", "10000",
       "documents a sorted walk of a whole index reads without a full page before it gives "
       "way to a collection scan",
       false},
      {"bulk.part_documents", "2500",
       "documents of a bulk chunk with indexes read and committed together", false},
      {"http.threads", "64", "HTTP worker threads", false},
      {"http.max_body_mb", "64", "largest HTTP request body", false},
      {"log.level", "info", "log level: debug, info, warn, error", false},
  };
}

int Fail(int code, const Status& s) { return server::Fail("gojodb-api", code, s); }

std::vector<std::string> SplitList(const std::string& flag) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= flag.size()) {
    size_t end = flag.find(',', pos);
    if (end == std::string::npos) end = flag.size();
    out.push_back(flag.substr(pos, end - pos));
    pos = end + 1;
  }
  return out;
}

Result<std::vector<std::string>> ParseControllers(const std::string& flag) {
  std::vector<std::string> out;
  for (auto& a : SplitList(flag)) {
    if (auto hp = http::SplitHostPort(a); !hp.ok()) {
      return hp.status().WithContext("--controllers entry '" + a + "'");
    }
    if (std::find(out.begin(), out.end(), a) != out.end()) {
      return Status::InvalidArgument("--controllers names " + a + " twice");
    }
    out.push_back(std::move(a));
  }
  return out;
}

Result<std::set<std::string>> ParseServices(const std::string& flag) {
  static const std::set<std::string> kKnown = {"reads", "writes", "bulk", "aggregation", "graphql"};
  std::set<std::string> out;
  for (const auto& s : SplitList(flag)) {
    if (!kKnown.count(s)) {
      return Status::InvalidArgument("--services entry '" + s + "' is not one of " +
                                     std::string(kAllServices));
    }
    out.insert(s);
  }
  return out;
}

int Run(int argc, char** argv) {
  CLI::App app{"GojoDB gateway: the HTTP and gRPC API over a cluster"};
  server::Config config(ApiSettings());
  if (auto stop = server::ParseCommandLine(&app, &config, argc, argv, "gojodb-api")) return *stop;

  auto timeout_ms = config.GetUint("request_timeout_ms");
  auto max_key = config.GetUint("limits.max_key_bytes");
  auto max_value = config.GetUint("limits.max_value_bytes");
  auto http_threads = config.GetUint("http.threads");
  auto body_mb = config.GetUint("http.max_body_mb");
  auto lock_ttl = config.GetUint("txn.lock_ttl_ms");
  auto lock_wait = config.GetUint("txn.lock_wait_ms");
  auto require_limit = config.GetBool("query.require_limit");
  auto walk_budget = config.GetUint("query.walk_budget");
  auto idle = config.GetUint("txn.idle_timeout_ms");
  auto part_docs = config.GetUint("bulk.part_documents");
  for (const Status* s :
       {&timeout_ms.status(), &max_key.status(), &max_value.status(), &http_threads.status(),
        &body_mb.status(), &lock_ttl.status(), &lock_wait.status(), &idle.status(),
        &require_limit.status(), &part_docs.status(), &walk_budget.status()}) {
    if (!s->ok()) return Fail(2, *s);
  }
  if (*lock_ttl == 0 || *idle == 0) {
    return Fail(
        2, Status::InvalidArgument("--txn-lock-ttl-ms and --txn-idle-timeout-ms must be positive"));
  }
  if (*timeout_ms == 0) {
    return Fail(2, Status::InvalidArgument("--request-timeout-ms must be positive"));
  }
  if (*max_key == 0 || *max_key > 4096) {
    return Fail(2, Status::InvalidArgument("--limits-max-key-bytes must be 1..4096"));
  }
  if (*part_docs == 0) {
    return Fail(2, Status::InvalidArgument("--bulk-part-documents must be positive"));
  }
  if (*http_threads == 0 || *body_mb == 0) {
    return Fail(2,
                Status::InvalidArgument("--http-threads and --http-max-body-mb must be positive"));
  }
  for (const char* key : {"http_addr", "grpc_addr"}) {
    if (auto hp = http::SplitHostPort(config.Get(key)); !hp.ok()) {
      return Fail(2, hp.status().WithContext(server::Config::FlagName(key)));
    }
  }
  auto controllers = ParseControllers(config.Get("controllers"));
  if (!controllers.ok()) return Fail(2, controllers.status());
  auto services = ParseServices(config.Get("services"));
  if (!services.ok()) return Fail(2, services.status());

  // Before any thread starts: main is the one that receives them.
  server::ShutdownSignals signals;
  rpc::TuneGrpcRuntime();

  gateway::ClusterKvOptions o;
  o.controllers = *controllers;
  o.request_timeout = std::chrono::milliseconds(*timeout_ms);
  o.limits.max_key_bytes = *max_key;
  o.limits.max_value_bytes = *max_value;
  o.txn_lock_ttl = std::chrono::milliseconds(*lock_ttl);
  o.txn_lock_wait = std::chrono::milliseconds(*lock_wait);
  o.txn_idle_timeout = std::chrono::milliseconds(*idle);
  o.require_query_limit = *require_limit;
  o.query_walk_budget = *walk_budget;
  o.ingest_part_docs = *part_docs;
  auto kv = gateway::ClusterKv::Start(o);
  if (!kv.ok()) return Fail(2, kv.status());

  Metrics metrics;
  metrics.AddGaugeSource("gateway", [k = kv->get()] { return k->StorageStats(); });
  gateway::ServiceFilter served(kv->get(), *services, config.Get("services"));

  const std::string grpc_addr = config.Get("grpc_addr");
  const std::string http_addr = config.Get("http_addr");
  rpc::GrpcServices grpc_services(
      &served, &metrics, [k = kv->get()] { return gateway::ClusterStatusProto(k, "cluster"); });
  grpc::ServerBuilder builder;
  rpc::TuneServerBuilder(&builder);
  int bound_port = 0;
  builder.AddListeningPort(grpc_addr, grpc::InsecureServerCredentials(), &bound_port);
  builder.SetMaxReceiveMessageSize(static_cast<int>((*body_mb) << 20));
  builder.SetMaxSendMessageSize(static_cast<int>((*body_mb) << 20));
  grpc_services.RegisterOn(&builder);
  std::unique_ptr<grpc::Server> grpc_server = builder.BuildAndStart();
  if (!grpc_server || bound_port == 0) {
    return Fail(1, Status::Unavailable("cannot listen on " + grpc_addr + " (gRPC)"));
  }

  http::HttpApi api(&served, &metrics,
                    [k = kv->get()] { return gateway::ClusterStatusJson(k, "cluster"); });
  http::HttpServer http_server(
      &api, {.max_body_bytes = (*body_mb) << 20, .threads = static_cast<int>(*http_threads)});
  if (Status s = http_server.Start(http_addr); !s.ok()) {
    grpc_server->Shutdown();
    return Fail(1, s);
  }
  spdlog::info("gojodb-api {} serving http={} grpc={} controllers={} services={}", kVersion,
               http_addr, grpc_addr, config.Get("controllers"), config.Get("services"));

  signals.Wait();
  // Requests in flight get a second (the HTTP server's grace) to finish; past it, those still
  // retrying (their storage nodes may be stopping too) stop trying.
  std::atomic<bool> http_stopped{false};
  std::thread cut_retries([&] {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    while (!http_stopped && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    (*kv)->Shutdown();
  });
  http_server.Stop();
  http_stopped = true;
  cut_retries.join();
  spdlog::info("http listener stopped");
  grpc_server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  grpc_services.Drain();
  spdlog::info("grpc server stopped");
  kv->reset();
  spdlog::info("shutdown complete");
  return 0;
}

}  // namespace
}  // namespace gojodb

int main(int argc, char** argv) { return gojodb::Run(argc, argv); }
