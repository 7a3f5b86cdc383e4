#include "cmd/cli/exit_code.h"

namespace gojodb::cli {

ExitCode ExitCodeFor(const Status& status) {
  switch (status.code()) {
    case StatusCode::kOk:
      return ExitCode::kOk;
    case StatusCode::kNotFound:
      return ExitCode::kNotFound;
    default:
      return ExitCode::kError;
  }
}

std::string ErrorLine(const Status& status) {
  std::string line = "error: ";
  line += StatusCodeName(status.code());
  if (!status.message().empty()) {
    line += ": ";
    line += status.message();
  }
  if (!status.details().empty()) {
    line += " [";
    bool first = true;
    for (const auto& [name, value] : status.details()) {
      if (!first) line += ", ";
      first = false;
      line += name;
      line += '=';
      line += value;
    }
    line += "]";
  }
  // One line, whatever the server put in its message.
  for (char& c : line) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return line;
}

std::string UsageErrorLine(std::string_view message) {
  std::string line = "error: ";
  line += message;
  for (char& c : line) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return line;
}

}  // namespace gojodb::cli
