// Test harness for real processes on loopback: spawn, signal, wait, free ports, and
// readiness polling. Used by integration and crash tests; no mocks of our servers.
#pragma once

#include <string>
#include <vector>

namespace gojodb::testing {

// A free TCP port on 127.0.0.1 (bound and released; good enough for tests).
int FreePort();

class Process {
 public:
  // Starts `argv[0]` with the arguments; stdout and stderr go to `log_path`.
  Process(std::vector<std::string> argv, std::string log_path);
  ~Process();  // SIGKILLs the process if still running

  int pid() const { return pid_; }
  bool Running();
  void Signal(int sig);
  // Waits for exit; returns the exit status, or 128+signal. -1 on timeout.
  int Wait(int timeout_ms = 30000);
  std::string Log() const;

 private:
  int pid_ = -1;
  int status_ = -1;
  bool exited_ = false;
  std::string log_path_;
};

// Runs a command to completion; returns its exit status and captures stdout/stderr.
struct RunResult {
  int status = -1;
  std::string out;
  std::string err;
};
RunResult RunCommand(std::vector<std::string> argv, const std::string& stdin_data = "",
                     int timeout_ms = 30000);

// Polls GET http://127.0.0.1:port/readyz until it answers 200 or the process dies.
bool WaitReady(int http_port, Process* p, int timeout_ms = 15000);

// The directory of the running test binary (where the project's binaries are built).
std::string BinDir();

// A fresh temporary directory, removed by the caller.
std::string TempDir(const std::string& tag);

}  // namespace gojodb::testing
