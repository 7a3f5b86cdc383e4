// The interactive shell: `gojodb shell`.
//
// Each line is a command as on the command line without the program name (`put k v`,
// `get k --output json`), split by shell_lexer.h, plus the shell's own commands:
// `use COLLECTION`, `output table|json`, `help [COMMAND]`, `exit`, `quit`.
// On a terminal it prompts, edits lines with GNU readline and keeps history in
// ~/.gojodb_history; Ctrl-C clears the line and Ctrl-D leaves. Otherwise it reads
// commands line by line without prompts, so that it can be scripted.
#pragma once

#include <string>

namespace gojodb::cli {

class Cli;

// Runs the shell on cli.io() until exit, quit or end of input. Returns the exit status
// of the last command that failed, or 0 if none did.
int RunShell(Cli& cli);

// Runs one line of the shell. Sets *quit on exit or quit. Returns the line's status.
int RunShellLine(Cli& cli, const std::string& line, bool* quit);

}  // namespace gojodb::cli
