#include "cmd/cli/shell.h"

#include <readline/history.h>
#include <readline/readline.h>
#include <sys/select.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <optional>

#include "cmd/cli/commands.h"
#include "cmd/cli/shell_lexer.h"

namespace gojodb::cli {
namespace {

constexpr char kHelp[] =
    "Commands (flags as on the command line, e.g. get k --output json):\n"
    "  put KEY VALUE [--if-version V] [--request-id R]\n"
    "  get KEY [--consistency linearizable|snapshot|stale] [--at TS]\n"
    "  delete KEY [--if-version V] [--request-id R]\n"
    "  scan [START [END]] [--prefix P] [--limit N] [--reverse] [--all] [--at TS]\n"
    "  collections create NAME [--schema JSON] [--index NAME:FIELD,...[:unique]]\n"
    "  collections list | describe NAME | drop NAME\n"
    "  collections add-index NAME INDEX:FIELD,...[:unique] [--wait-ms MS]\n"
    "  collections drop-index NAME INDEX\n"
    "  cluster status\n"
    "  node list | decommission ID        (these need --addr of a controller)\n"
    "  shard list\n"
    "  controller add ID ADDR | remove ID\n"
    "  settings get | set NAME=VALUE [NAME=VALUE...]\n"
    "  tso [--count N]\n"
    "  version\n"
    "  begin                open a transaction: put, get, delete and scan run in it\n"
    "  commit | rollback    end it (its writes apply together, or not at all)\n"
    "  use COLLECTION       switch the current collection\n"
    "  output table|json    switch the output format\n"
    "  help [COMMAND]       this text, or the flags of COMMAND\n"
    "  exit, quit, Ctrl-D   leave the shell\n"
    "Quoting: \"my key\" allows escapes (\\\" \\\\ \\n \\t \\xHH); 'text' is literal.\n";

constexpr int kHistoryLines = 1000;

int UsageError(Cli& cli, const std::string& message) {
  *cli.io().err << UsageErrorLine(message) << std::endl;
  return static_cast<int>(ExitCode::kUsage);
}

int Use(Cli& cli, const std::vector<std::string>& words) {
  if (words.size() != 2 || words[1].empty()) return UsageError(cli, "use COLLECTION");
  GlobalOptions& g = cli.defaults();
  auto backend = cli.BackendFor(g.addr, g.timeout_ms);
  Status s =
      backend.ok() ? (*backend)->kv().DescribeCollection(words[1]).status() : backend.status();
  if (!s.ok()) {
    *cli.io().err << ErrorLine(s) << std::endl;
    return static_cast<int>(ExitCodeFor(s));
  }
  g.collection = words[1];
  if (cli.io().in_is_tty) *cli.io().out << "using collection '" << words[1] << "'" << std::endl;
  return 0;
}

int Output(Cli& cli, const std::vector<std::string>& words) {
  if (words.size() != 2 || (words[1] != "table" && words[1] != "json")) {
    return UsageError(cli, "output table|json");
  }
  cli.defaults().output = words[1] == "json" ? OutputMode::kJson : OutputMode::kTable;
  return 0;
}

// ---- Terminal input (GNU readline, callback interface so that Ctrl-C can clear a line).

volatile sig_atomic_t g_interrupted = 0;
bool g_line_done = false;
std::optional<std::string> g_line;

void OnSigint(int) { g_interrupted = 1; }

void OnLine(char* line) {
  g_line_done = true;
  if (line == nullptr) {
    g_line.reset();
  } else {
    g_line = line;
    std::free(line);
  }
  rl_callback_handler_remove();  // no new prompt until the command has run
}

// One line from the terminal; nullopt at end of input.
std::optional<std::string> ReadTerminalLine(const std::string& prompt) {
  g_line_done = false;
  g_line.reset();
  g_interrupted = 0;
  rl_callback_handler_install(prompt.c_str(), OnLine);
  const int fd = fileno(rl_instream != nullptr ? rl_instream : stdin);
  while (!g_line_done) {
    fd_set fds;
    FD_ZERO(&fds);
    FD_SET(fd, &fds);
    int n = select(fd + 1, &fds, nullptr, nullptr, nullptr);
    if (n < 0) {
      if (errno != EINTR) break;
      if (g_interrupted) {  // Ctrl-C: drop the line, start a fresh prompt
        g_interrupted = 0;
        rl_free_line_state();
        rl_callback_sigcleanup();
        rl_replace_line("", 0);
        rl_crlf();
        rl_on_new_line();
        rl_redisplay();
      }
      continue;
    }
    rl_callback_read_char();
  }
  if (!g_line_done) {
    rl_callback_handler_remove();
    return std::nullopt;
  }
  return g_line;
}

std::string HistoryPath() {
  const char* home = std::getenv("HOME");
  if (home == nullptr || home[0] == '\0') return "";
  return std::string(home) + "/.gojodb_history";
}

int RunTerminal(Cli& cli) {
  const std::string history = HistoryPath();
  using_history();
  stifle_history(kHistoryLines);
  if (!history.empty()) read_history(history.c_str());
  rl_catch_signals = 0;  // Ctrl-C is ours: it clears the line
  struct sigaction sa = {}, old_sa = {};
  sa.sa_handler = OnSigint;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: interrupt select()
  sigaction(SIGINT, &sa, &old_sa);

  std::cout << "gojodb shell, server " << cli.defaults().addr << ". Type 'help'.\n";
  int last_failure = 0;
  std::string previous;
  while (true) {
    auto line = ReadTerminalLine("gojodb:" + cli.defaults().collection +
                                 (cli.in_txn() ? " (txn)> " : "> "));
    if (!line) {
      std::cout << std::endl;
      break;
    }
    if (line->find_first_not_of(" \t") != std::string::npos && *line != previous) {
      add_history(line->c_str());
      previous = *line;
      if (!history.empty() && append_history(1, history.c_str()) != 0) {
        write_history(history.c_str());  // the first time: the file does not exist yet
      }
    }
    bool quit = false;
    int status = RunShellLine(cli, *line, &quit);
    if (status != 0) last_failure = status;
    if (quit) break;
  }
  if (!history.empty()) history_truncate_file(history.c_str(), kHistoryLines);
  sigaction(SIGINT, &old_sa, nullptr);
  return last_failure;
}

int RunScript(Cli& cli) {
  int last_failure = 0;
  std::string line;
  while (std::getline(*cli.io().in, line)) {
    bool quit = false;
    int status = RunShellLine(cli, line, &quit);
    if (status != 0) last_failure = status;
    if (quit) break;
  }
  return last_failure;
}

}  // namespace

int RunShellLine(Cli& cli, const std::string& line, bool* quit) {
  auto words = SplitShellLine(line);
  if (!words.ok()) return UsageError(cli, words.status().message());
  if (words->empty()) return 0;
  const std::string& cmd = words->front();
  if (cmd == "exit" || cmd == "quit") {
    *quit = true;
    return 0;
  }
  if (cmd == "help") {
    if (words->size() == 1) {
      *cli.io().out << kHelp;
      return 0;
    }
    std::vector<std::string> args(words->begin() + 1, words->end());
    args.push_back("--help");
    return cli.RunInShell(args);
  }
  if (cmd == "use") return Use(cli, *words);
  if (cmd == "begin" || cmd == "commit" || cmd == "rollback") {
    if (words->size() != 1) return UsageError(cli, cmd + " takes no arguments");
    if (cmd == "begin") return cli.ShellBegin();
    return cmd == "commit" ? cli.ShellCommit() : cli.ShellRollback();
  }
  if (cmd == "output") return Output(cli, *words);
  if (cmd == "shell") return UsageError(cli, "already in the shell");
  return cli.RunInShell(*words);
}

int RunShell(Cli& cli) {
  int status = cli.io().in_is_tty && cli.io().in == &std::cin ? RunTerminal(cli) : RunScript(cli);
  if (cli.in_txn()) {
    // Its writes were never sent: rolling back only frees the server's session.
    *cli.io().err << "the open transaction was rolled back" << std::endl;
    (void)cli.ShellRollback();
  }
  return status;
}

}  // namespace gojodb::cli
