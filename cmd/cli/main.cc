// gojodb: the command-line client. See docs/cli.md.
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "cmd/cli/backend.h"
#include "cmd/cli/commands.h"
#include "internal/version.h"

int main(int argc, char** argv) {
  using namespace gojodb::cli;
  // gRPC's own log lines would repeat the one error line the CLI prints.
  setenv("GRPC_VERBOSITY", "NONE", /*overwrite=*/0);

  GlobalOptions defaults;
  defaults.addr = DefaultAddr(std::getenv("GOJODB_ADDR"));
  Io io;
  io.in = &std::cin;
  io.out = &std::cout;
  io.err = &std::cerr;
  io.in_is_tty = isatty(STDIN_FILENO) == 1;
  io.out_is_tty = isatty(STDOUT_FILENO) == 1;
  io.err_is_tty = isatty(STDERR_FILENO) == 1;

  Cli cli(defaults, ConnectGrpc, io, gojodb::kVersion);
  return cli.Run(std::vector<std::string>(argv + 1, argv + argc));
}
