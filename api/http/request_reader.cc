#include "api/http/request_reader.h"

#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

namespace gojodb::http {

namespace bhttp = boost::beast::http;

struct RequestReader::Parser {
  bhttp::request_parser<bhttp::string_body> p;
  bool consumed_any = false;
};

namespace {

std::string_view View(boost::beast::string_view s) { return {s.data(), s.size()}; }

bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

}  // namespace

RequestReader::RequestReader(RequestLimits limits) : limits_(limits) { NextRequest(); }

RequestReader::~RequestReader() = default;

void RequestReader::Append(std::string_view bytes) { buf_.append(bytes); }

void RequestReader::Fail(int http_status, Status status) {
  state_ = State::kFailed;
  error_http_status_ = http_status;
  error_ = std::move(status);
}

void RequestReader::FailHeadersTooLarge() {
  Fail(431, Status::InvalidArgument("request line and headers are longer than the server "
                                    "accepts (" +
                                    std::to_string(limits_.max_header_bytes) + " bytes)")
                .WithDetail("reason", "HEADERS_TOO_LARGE"));
}

RequestReader::State RequestReader::Next() {
  if (state_ == State::kReady || state_ == State::kFailed) return state_;
  auto& p = parser_->p;
  const bool header_was_done = p.is_header_done();
  if (!header_was_done) {
    // The request line and headers together, however the bytes arrived (Beast limits
    // the line and the fields each on their own, and at points that depend on the split).
    const size_t end = buf_.find("\r\n\r\n");
    if ((end == std::string::npos ? buf_.size() : end + 4) > limits_.max_header_bytes) {
      FailHeadersTooLarge();
      return state_;
    }
  }
  size_t off = 0;
  boost::system::error_code ec;
  while (off < buf_.size() && !p.is_done()) {
    const size_t n = p.put(boost::asio::const_buffer(buf_.data() + off, buf_.size() - off), ec);
    off += n;
    if (n > 0) parser_->consumed_any = true;
    if (ec == bhttp::error::need_more) {
      ec = {};
      break;
    }
    if (ec || n == 0) break;
  }
  buf_.erase(0, off);
  if (ec == bhttp::error::body_limit) {
    Fail(413, Status::ResourceExhausted("request body is larger than the server accepts (" +
                                        std::to_string(limits_.max_body_bytes) + " bytes)")
                  .WithDetail("reason", "TOO_LARGE"));
    return state_;
  }
  if (ec == bhttp::error::header_limit) {
    // Beast's own count, of the line or the fields, reached the limit first.
    FailHeadersTooLarge();
    return state_;
  }
  if (ec) {
    Fail(400, Status::InvalidArgument("malformed HTTP request: " + ec.message()));
    return state_;
  }
  if (!p.is_header_done()) return state_;
  if (!p.is_done() && buf_.size() > limits_.max_header_bytes) {
    // Body bytes are taken as they come: what stays is a chunk's size line or the
    // trailer, still without its end.
    Fail(400, Status::InvalidArgument("malformed HTTP request: a chunk size line or the "
                                      "trailer is longer than " +
                                      std::to_string(limits_.max_header_bytes) + " bytes"));
    return state_;
  }
  if (!header_was_done) {
    const auto& m = p.get();
    const auto verb = m.method();
    if (m.count(bhttp::field::transfer_encoding) > 0 && !p.chunked()) {
      // RFC 9112 6.3: a request whose last coding is not chunked has no length to read.
      Fail(400, Status::InvalidArgument("malformed HTTP request: Transfer-Encoding must end "
                                        "with chunked (the only coding this server reads)"));
      return state_;
    }
    if ((verb == bhttp::verb::post || verb == bhttp::verb::put || verb == bhttp::verb::patch) &&
        !p.chunked() && !p.content_length()) {
      Fail(400, Status::InvalidArgument(
                    "a " + std::string(View(m.method_string())) +
                    " needs a body: send Content-Length (0 for an empty one) or a chunked body"));
      return state_;
    }
  }
  if (p.is_done()) {
    state_ = State::kReady;
  } else if (!continue_sent_ && IEquals(View(p.get()[bhttp::field::expect]), "100-continue")) {
    continue_sent_ = true;
    return State::kSendContinue;
  }
  return state_;
}

std::string_view RequestReader::method() const { return View(parser_->p.get().method_string()); }

std::string_view RequestReader::target() const { return View(parser_->p.get().target()); }

std::string_view RequestReader::body() const { return parser_->p.get().body(); }

std::string RequestReader::header(std::string_view name) const {
  const auto& m = parser_->p.get();
  auto it = m.find(boost::beast::string_view(name.data(), name.size()));
  return it == m.end() ? std::string() : std::string(View(it->value()));
}

bool RequestReader::keep_alive() const { return parser_->p.get().keep_alive(); }

void RequestReader::NextRequest() {
  // A connection that sent a large request may then idle for long: keep no large
  // buffer for it.
  if (buf_.empty() && buf_.capacity() > (64u << 10)) std::string().swap(buf_);
  parser_ = std::make_unique<Parser>();
  auto& p = parser_->p;
  p.eager(true);
  p.header_limit(static_cast<std::uint32_t>(limits_.max_header_bytes));
  p.body_limit(static_cast<std::uint64_t>(limits_.max_body_bytes));
  state_ = State::kNeedMore;
  continue_sent_ = false;
  error_ = Status::OK();
  error_http_status_ = 0;
}

bool RequestReader::Idle() const {
  return buf_.empty() && !parser_->consumed_any && state_ == State::kNeedMore;
}

}  // namespace gojodb::http
