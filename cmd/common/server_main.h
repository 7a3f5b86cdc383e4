// Start-up and shutdown shared by the servers (gojodb-standalone, gojodb-controller):
// flags and configuration, logs, exit codes, and the shutdown signals.
#pragma once

#include <signal.h>

#include <optional>
#include <string>
#include <string_view>

#include "cmd/common/config.h"
#include "internal/status.h"

namespace CLI {
class App;
}

namespace gojodb::server {

// Prints "program: message" on stderr and returns `code` (the exit status).
int Fail(std::string_view program, int code, const Status& s);

// Adds the configuration's flags and --version to `app`, parses argv and resolves the
// configuration, then sets up the logs from `log.level` (timestamped key=value lines).
// Returns the exit status when the process should stop now (0 after --help or
// --version, 2 on bad flags or configuration), nullopt to go on.
std::optional<int> ParseCommandLine(CLI::App* app, Config* config, int argc, char** argv,
                                    std::string_view program);

// The allocator the process runs on: "jemalloc <version>" when jemalloc's malloc is the
// one in use (the servers link it, decision 32), "libc malloc" otherwise. Logged at
// start-up.
std::string AllocatorName();

// Blocks SIGINT and SIGTERM in the calling thread and every thread it starts after, so
// that Wait, on the main thread, is the one place that receives them.
class ShutdownSignals {
 public:
  ShutdownSignals();
  // Waits for SIGINT or SIGTERM, logs it, and returns it.
  int Wait();

 private:
  sigset_t set_;
};

}  // namespace gojodb::server
