#include "cmd/common/server_main.h"

#include <dlfcn.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdio>

#include "internal/version.h"

namespace gojodb::server {

int Fail(std::string_view program, int code, const Status& s) {
  std::fprintf(stderr, "%.*s: %s\n", static_cast<int>(program.size()), program.data(),
               s.message().c_str());
  return code;
}

std::optional<int> ParseCommandLine(CLI::App* app, Config* config, int argc, char** argv,
                                    std::string_view program) {
  config->AddFlags(app);
  app->set_version_flag("--version", std::string(kVersion));
  try {
    app->parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app->exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app->exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "%.*s: %s (see --help)\n", static_cast<int>(program.size()),
                 program.data(), e.what());
    return 2;
  }
  if (Status s = config->Resolve(); !s.ok()) return Fail(program, 2, s);
  spdlog::set_level(spdlog::level::from_str(config->Get("log.level")));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%l%$ %v", spdlog::pattern_time_type::utc);
  spdlog::info("{} {}, allocator {}", program, kVersion, AllocatorName());
  return std::nullopt;
}

std::string AllocatorName() {
  // jemalloc's control interface, looked up rather than linked so that a build without
  // jemalloc links too; found only when the process runs on jemalloc.
  using Mallctl = int (*)(const char*, void*, size_t*, void*, size_t);
  auto mallctl = reinterpret_cast<Mallctl>(dlsym(RTLD_DEFAULT, "mallctl"));
  if (mallctl == nullptr) return "libc malloc";
  const char* version = nullptr;
  size_t size = sizeof(version);
  if (mallctl("version", &version, &size, nullptr, 0) != 0 || version == nullptr) {
    return "jemalloc";
  }
  return std::string("jemalloc ") + version;
}

ShutdownSignals::ShutdownSignals() {
  sigemptyset(&set_);
  sigaddset(&set_, SIGINT);
  sigaddset(&set_, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set_, nullptr);
}

int ShutdownSignals::Wait() {
  int sig = 0;
  sigwait(&set_, &sig);
  spdlog::info("received {}, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
  return sig;
}

}  // namespace gojodb::server
