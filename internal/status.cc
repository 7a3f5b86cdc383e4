#include "internal/status.h"

#include <array>

namespace gojodb {
namespace {
constexpr std::array<std::string_view, 17> kNames = {
    "OK",        "CANCELLED",      "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
    "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED",   "OUT_OF_RANGE",   "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
    "DATA_LOSS", "UNAUTHENTICATED"};
}  // namespace

std::string_view StatusCodeName(StatusCode code) {
  auto i = static_cast<size_t>(code);
  return i < kNames.size() ? kNames[i] : "UNKNOWN";
}

std::optional<StatusCode> StatusCodeFromName(std::string_view name) {
  for (size_t i = 0; i < kNames.size(); ++i) {
    if (kNames[i] == name) return static_cast<StatusCode>(i);
  }
  return std::nullopt;
}

Status::Status(StatusCode code, std::string message) {
  if (code != StatusCode::kOk) rep_ = std::make_shared<Rep>(Rep{code, std::move(message), {}});
}

Status Status::WithDetail(std::string name, std::string value) const {
  if (ok()) return *this;
  auto rep = std::make_shared<Rep>(*rep_);
  rep->details.emplace_back(std::move(name), std::move(value));
  Status s;
  s.rep_ = std::move(rep);
  return s;
}

const Status::Details& Status::details() const {
  static const Details kNone;
  return rep_ ? rep_->details : kNone;
}

const std::string& Status::message() const {
  static const std::string kEmpty;
  return rep_ ? rep_->message : kEmpty;
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  return std::string(StatusCodeName(code())) + ": " + message();
}

Status Status::WithContext(std::string_view prefix) const {
  if (ok()) return *this;
  auto rep = std::make_shared<Rep>(*rep_);
  rep->message = std::string(prefix) + ": " + rep->message;
  Status s;
  s.rep_ = std::move(rep);
  return s;
}

}  // namespace gojodb
