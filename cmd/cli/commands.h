// The gojodb command line: parses a command (CLI11), runs it against a Backend and
// prints the result. The same Cli object serves one-shot invocations and every line of
// the interactive shell (shell.h), which keeps its defaults (server, collection, output)
// between lines.
//
// Not thread-safe.
#pragma once

#include <iosfwd>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cmd/cli/backend.h"
#include "cmd/cli/exit_code.h"
#include "cmd/cli/render.h"

namespace gojodb::cli {

// Defaults for the global flags; each command line may override them.
struct GlobalOptions {
  std::string addr = "127.0.0.1:7001";
  OutputMode output = OutputMode::kTable;
  std::string collection = "default";
  int timeout_ms = 10000;
};

// Where a Cli reads and writes. Not owned.
struct Io {
  std::istream* in = nullptr;   // `put KEY -` reads the value here; the shell reads lines
  std::ostream* out = nullptr;  // results
  std::ostream* err = nullptr;  // error lines
  bool in_is_tty = false;       // the shell prompts and keeps history only on a terminal
  bool out_is_tty = false;      // `get` escapes unprintable values only on a terminal
  bool err_is_tty = false;      // `import` and `export` draw a progress bar only on a terminal
};

// The server address to use when --addr is not given: $GOJODB_ADDR when set and not
// empty (env_value, nullptr when unset), else 127.0.0.1:7001.
std::string DefaultAddr(const char* env_value);

class Cli {
 public:
  Cli(GlobalOptions defaults, Connector connect, Io io, std::string version);

  // Runs one command; `args` excludes the program name. Returns the exit status.
  int Run(const std::vector<std::string>& args);

  // As Run, for a line of the shell: no program name in messages, and no `shell` or
  // `put KEY -` (stdin holds the script).
  int RunInShell(const std::vector<std::string>& args);

  GlobalOptions& defaults() { return defaults_; }
  const Io& io() const { return io_; }
  const std::string& version() const { return version_; }
  // The backend for addr, connected on first use and kept.
  Result<Backend*> BackendFor(const std::string& addr, int timeout_ms);

  // The shell's interactive transaction: `begin` opens one on the shell's server; until
  // `commit` or `rollback`, put, get, delete and scan run inside it.
  int ShellBegin();
  int ShellCommit();
  int ShellRollback();
  bool in_txn() const { return txn_.has_value(); }

 private:
  struct Args;
  int Dispatch(const std::vector<std::string>& args, bool in_shell);
  int Usage(const std::string& command, const std::string& message);
  int Fail(const Status& status);
  void Print(const std::string& text);

  int DoPut(const Args& a);
  int DoGet(const Args& a);
  int DoDelete(const Args& a);
  int DoScan(const Args& a);
  int DoQuery(const Args& a);
  int DoAggregate(const Args& a);
  int DoImport(const Args& a);
  int DoExport(const Args& a);
  int DoCollectionCreate(const Args& a);
  int DoCollectionList(const Args& a);
  int DoCollectionDescribe(const Args& a);
  int DoCollectionDrop(const Args& a);
  int DoIndexAdd(const Args& a);
  int DoIndexDrop(const Args& a);
  int DoClusterStatus(const Args& a);
  int DoNodeList(const Args& a);
  int DoNodeDecommission(const Args& a);
  int DoShardList(const Args& a);
  int DoControllerAdd(const Args& a);
  int DoControllerRemove(const Args& a);
  int DoSettingsGet(const Args& a);
  int DoSettingsSet(const Args& a);
  int DoTso(const Args& a);
  int DoVersion(const Args& a);
  int DoShell(const Args& a);

  GlobalOptions defaults_;
  Connector connect_;
  Io io_;
  std::string version_;
  bool in_shell_ = false;
  std::string addr_;  // the server of the command being run
  struct OpenTxn {
    std::string id;
    std::string addr;
    int timeout_ms = 0;
  };
  std::optional<OpenTxn> txn_;  // the shell's open transaction
  // A data command inside the open transaction refuses the flags that do not apply.
  int TxnOnly(const Args& a, const std::string& command);
  // Prints a get's answer, or fails with NOT_FOUND naming the key.
  int PrintGot(const Args& a, const Result<kv::GetResult>& r);
  std::map<std::pair<std::string, int>, std::unique_ptr<Backend>> backends_;
};

}  // namespace gojodb::cli
