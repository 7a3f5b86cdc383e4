// Exit statuses of the gojodb CLI and the one-line error messages it prints.
//
//   0  success
//   1  not found: a missing key, an unknown collection
//   2  usage error: bad flags or arguments (found before any request is sent)
//   3  any other error (server unreachable, version conflict, bad request, ...)
#pragma once

#include <string>
#include <string_view>

#include "internal/status.h"

namespace gojodb::cli {

enum class ExitCode : int { kOk = 0, kNotFound = 1, kUsage = 2, kError = 3 };

// The exit status for the outcome of a request: OK -> 0, NOT_FOUND -> 1, else 3.
ExitCode ExitCodeFor(const Status& status);

// "error: NOT_FOUND: collection 'x' does not exist", with the status details appended
// as " [current_version=42]". No trailing newline.
std::string ErrorLine(const Status& status);

// "error: <message>" for a usage error found by the CLI itself. No trailing newline.
std::string UsageErrorLine(std::string_view message);

}  // namespace gojodb::cli
