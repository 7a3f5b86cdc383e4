// Reads the HTTP/1.1 requests of one connection, one after another (keep-alive and
// pipelining), with Boost.Beast's parser. No I/O and no clock: the server appends what it
// receives and asks what to do next, so the fuzzer drives it with any split of any bytes.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "internal/status.h"

namespace gojodb::http {

struct RequestLimits {
  size_t max_body_bytes = 64u << 20;
  // The request line and the headers together.
  size_t max_header_bytes = 64u << 10;
};

class RequestReader {
 public:
  enum class State {
    kNeedMore,      // append more bytes
    kSendContinue,  // the client waits for "100 Continue" before it sends the body (once)
    kReady,         // a whole request: answer it, then NextRequest()
    kFailed,        // answer error() with error_http_status() and close the connection
  };

  explicit RequestReader(RequestLimits limits);
  ~RequestReader();
  RequestReader(const RequestReader&) = delete;
  RequestReader& operator=(const RequestReader&) = delete;

  void Append(std::string_view bytes);
  // Parses what has been appended. Stays kReady or kFailed until NextRequest().
  State Next();

  // Of the request when kReady. HEAD is reported as is.
  std::string_view method() const;
  std::string_view target() const;
  std::string_view body() const;
  // The value of a request header by name, case-insensitively; "" when absent.
  std::string header(std::string_view name) const;
  // HTTP/1.1 without "Connection: close", or HTTP/1.0 with "Connection: keep-alive".
  bool keep_alive() const;

  // When kFailed.
  const Status& error() const { return error_; }
  int error_http_status() const { return error_http_status_; }

  // Starts on the next request; bytes already appended past this one are kept.
  void NextRequest();
  // True when no byte of an unanswered request has been appended.
  bool Idle() const;

 private:
  struct Parser;
  void Fail(int http_status, Status status);
  void FailHeadersTooLarge();

  const RequestLimits limits_;
  std::string buf_;  // appended, not yet given to the parser
  std::unique_ptr<Parser> parser_;
  State state_ = State::kNeedMore;
  bool continue_sent_ = false;
  Status error_;
  int error_http_status_ = 0;
};

}  // namespace gojodb::http
