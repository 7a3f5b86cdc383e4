// Starts a real gojodb-standalone process on free loopback ports for a test.
#pragma once

#include <memory>
#include <string>

#include "tests/integration/process.h"

namespace gojodb::testing {

class StandaloneServer {
 public:
  explicit StandaloneServer(std::string data_dir, std::vector<std::string> extra_flags = {})
      : data_dir_(std::move(data_dir)), extra_(std::move(extra_flags)) {}

  // Starts (or restarts) on fresh ports; false if it did not become ready.
  bool Start() {
    http_port_ = FreePort();
    grpc_port_ = FreePort();
    std::vector<std::string> argv = {BinDir() + "/gojodb-standalone",
                                     "--data-dir",
                                     data_dir_,
                                     "--http-addr",
                                     "127.0.0.1:" + std::to_string(http_port_),
                                     "--grpc-addr",
                                     "127.0.0.1:" + std::to_string(grpc_port_)};
    argv.insert(argv.end(), extra_.begin(), extra_.end());
    proc_ = std::make_unique<Process>(argv, data_dir_ + ".log");
    return WaitReady(http_port_, proc_.get());
  }

  Process* process() { return proc_.get(); }
  int http_port() const { return http_port_; }
  std::string grpc_addr() const { return "127.0.0.1:" + std::to_string(grpc_port_); }
  std::string Log() const { return proc_ ? proc_->Log() : ""; }

 private:
  std::string data_dir_;
  std::vector<std::string> extra_;
  int http_port_ = 0;
  int grpc_port_ = 0;
  std::unique_ptr<Process> proc_;
};

}  // namespace gojodb::testing
