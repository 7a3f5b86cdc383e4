// The HTTP listener over real loopback sockets: keep-alive, pipelining, parking of idle
// connections, limits, timeouts and shutdown. Requests are written as raw bytes so that
// what goes on the wire is exactly what the test says.
#include "api/http/http_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace gojodb::http {
namespace {

using namespace std::chrono_literals;

class Socket {
 public:
  explicit Socket(int port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    timeval tv{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~Socket() { ::close(fd_); }
  bool connected() const { return connected_; }
  bool Send(const std::string& s) {
    return ::send(fd_, s.data(), s.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(s.size());
  }
  // Reads one response: its status line, headers and Content-Length body. "" on EOF.
  std::string ReadResponse() {
    for (;;) {
      size_t end = buf_.find("\r\n\r\n");
      if (end != std::string::npos) {
        std::string head = buf_.substr(0, end + 4);
        size_t len = 0;
        if (auto cl = head.find("Content-Length: "); cl != std::string::npos) {
          len = std::stoul(head.substr(cl + 16));
        }
        if (head.rfind("HTTP/1.1 100", 0) == 0) len = 0;
        if (buf_.size() >= end + 4 + len) {
          std::string r = buf_.substr(0, end + 4 + len);
          buf_.erase(0, end + 4 + len);
          return r;
        }
      }
      if (!Fill()) return "";
    }
  }
  // True when the server closed the connection (after any buffered bytes).
  bool Closed() { return buf_.empty() && !Fill(); }

 private:
  bool Fill() {
    char b[65536];
    ssize_t n = ::recv(fd_, b, sizeof b, 0);
    if (n <= 0) return false;
    buf_.append(b, static_cast<size_t>(n));
    return true;
  }
  int fd_;
  bool connected_ = false;
  std::string buf_;
};

std::string Body(const std::string& response) {
  return response.substr(response.find("\r\n\r\n") + 4);
}

class HttpServerTest : public ::testing::Test {
 protected:
  void StartServer(HttpServerOptions o = {}) {
    server_ = std::make_unique<HttpServer>(
        [this](std::string_view method, std::string_view target, std::string_view body,
               const HeaderLookup& header) {
          ++calls_;
          if (target == "/slow") std::this_thread::sleep_for(300ms);
          HttpResponse r;
          r.content_type = "text/plain";
          r.body = std::string(method) + " " + std::string(target) + " " +
                   std::to_string(body.size()) + " " + header("X-Tag");
          if (target == "/big") r.body = std::string(3 << 20, 'b');
          r.headers.emplace_back("X-Served", "1");
          return r;
        },
        o);
    ASSERT_TRUE(server_->Start("127.0.0.1:0").ok());
    port_ = server_->port();
    ASSERT_GT(port_, 0);
  }
  void TearDown() override {
    if (server_) server_->Stop();
  }
  std::unique_ptr<HttpServer> server_;
  int port_ = 0;
  std::atomic<int> calls_{0};
};

TEST_F(HttpServerTest, ServesManyRequestsOnOneConnection) {
  StartServer();
  Socket s(port_);
  ASSERT_TRUE(s.connected());
  for (int i = 0; i < 5; ++i) {
    const std::string body(static_cast<size_t>(i * 1000), 'x');
    ASSERT_TRUE(s.Send("POST /k" + std::to_string(i) + " HTTP/1.1\r\nX-Tag: t" + std::to_string(i) +
                       "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body));
    std::string r = s.ReadResponse();
    ASSERT_EQ(r.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << r;
    EXPECT_NE(r.find("Content-Type: text/plain\r\n"), std::string::npos) << r;
    EXPECT_NE(r.find("X-Served: 1\r\n"), std::string::npos) << r;
    EXPECT_EQ(r.find("Connection: close"), std::string::npos) << r;
    EXPECT_EQ(Body(r), "POST /k" + std::to_string(i) + " " + std::to_string(body.size()) + " t" +
                           std::to_string(i));
  }
}

TEST_F(HttpServerTest, AnswersPipelinedRequestsInOrder) {
  StartServer();
  Socket s(port_);
  std::string all;
  for (int i = 0; i < 20; ++i) all += "GET /p" + std::to_string(i) + " HTTP/1.1\r\n\r\n";
  ASSERT_TRUE(s.Send(all));
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(Body(s.ReadResponse()), "GET /p" + std::to_string(i) + " 0 ");
  }
}

TEST_F(HttpServerTest, HeadGetsTheHeadersOfGetWithoutTheBody) {
  StartServer();
  Socket s(port_);
  ASSERT_TRUE(s.Send("HEAD /h HTTP/1.1\r\n\r\nGET /after HTTP/1.1\r\n\r\n"));
  // The HEAD answer says the GET's length but carries no body, so the next answer
  // starts right after its headers.
  std::string r = s.ReadResponse();  // reads Content-Length bytes: the next answer's start
  EXPECT_NE(r.find("Content-Length: 9\r\n"), std::string::npos) << r;  // "GET /h 0 "
  EXPECT_EQ(r.substr(r.find("\r\n\r\n") + 4, 8), "HTTP/1.1");
}

TEST_F(HttpServerTest, InvitesTheBodyWhenTheClientExpectsContinue) {
  StartServer();
  Socket s(port_);
  ASSERT_TRUE(s.Send("PUT /c HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"));
  EXPECT_EQ(s.ReadResponse(), "HTTP/1.1 100 Continue\r\n\r\n");
  ASSERT_TRUE(s.Send("hello"));
  EXPECT_EQ(Body(s.ReadResponse()), "PUT /c 5 ");
}

TEST_F(HttpServerTest, RefusesAnOversizedBodyBeforeReadingIt) {
  StartServer({.max_body_bytes = 1000});
  Socket s(port_);
  ASSERT_TRUE(s.Send("PUT /k HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5000\r\n\r\n"));
  std::string r = s.ReadResponse();
  ASSERT_EQ(r.rfind("HTTP/1.1 413 ", 0), 0u) << r;
  EXPECT_NE(r.find("Connection: close\r\n"), std::string::npos) << r;
  EXPECT_NE(Body(r).find("\"reason\":\"TOO_LARGE\""), std::string::npos) << r;
  EXPECT_TRUE(s.Closed());
  EXPECT_EQ(calls_, 0);
}

TEST_F(HttpServerTest, MalformedRequestsGetJsonErrorsAndTheServerStaysUp) {
  StartServer({.max_body_bytes = 1000});
  struct Case {
    std::string bytes;
    int status;
  };
  for (const auto& c : std::vector<Case>{
           {"BLAH\r\n\r\n", 400},
           {"GET / HTTP/1.1\r\nbad header\r\n\r\n", 400},
           {"POST /v1/txn/begin HTTP/1.1\r\n\r\n", 400},
           {"GET /" + std::string(70000, 'a') + " HTTP/1.1\r\n\r\n", 431},
       }) {
    Socket s(port_);
    ASSERT_TRUE(s.Send(c.bytes));
    std::string r = s.ReadResponse();
    ASSERT_EQ(r.rfind("HTTP/1.1 " + std::to_string(c.status) + " ", 0), 0u) << r;
    EXPECT_NE(r.find("Content-Type: application/json"), std::string::npos) << r;
    EXPECT_NE(Body(r).find("{\"error\":{\"code\":"), std::string::npos) << r;
    EXPECT_TRUE(s.Closed());
  }
  EXPECT_EQ(calls_, 0);
  Socket ok(port_);
  ASSERT_TRUE(ok.Send("GET /fine HTTP/1.1\r\n\r\n"));
  EXPECT_EQ(Body(ok.ReadResponse()), "GET /fine 0 ");
}

TEST_F(HttpServerTest, ClosesWhenTheClientAsks) {
  StartServer();
  Socket s(port_);
  ASSERT_TRUE(s.Send("GET /a HTTP/1.1\r\nConnection: close\r\n\r\n"));
  std::string r = s.ReadResponse();
  EXPECT_NE(r.find("Connection: close\r\n"), std::string::npos) << r;
  EXPECT_TRUE(s.Closed());
  Socket old(port_);
  ASSERT_TRUE(old.Send("GET /b HTTP/1.0\r\n\r\n"));
  EXPECT_EQ(Body(old.ReadResponse()), "GET /b 0 ");
  EXPECT_TRUE(old.Closed());
}

// Idle keep-alive connections are parked, so two workers serve more connections than
// that; a parked connection that speaks again is served again.
TEST_F(HttpServerTest, IdleConnectionsHoldNoWorker) {
  StartServer({.threads = 2, .park_after_ms = 10});
  std::vector<std::unique_ptr<Socket>> socks;
  for (int i = 0; i < 8; ++i) {
    socks.push_back(std::make_unique<Socket>(port_));
    ASSERT_TRUE(socks.back()->connected());
    ASSERT_TRUE(socks.back()->Send("GET /first" + std::to_string(i) + " HTTP/1.1\r\n\r\n"));
    EXPECT_EQ(Body(socks.back()->ReadResponse()), "GET /first" + std::to_string(i) + " 0 ");
  }
  std::this_thread::sleep_for(50ms);
  for (int round = 0; round < 2; ++round) {
    for (int i = 7; i >= 0; --i) {
      ASSERT_TRUE(socks[i]->Send("GET /again" + std::to_string(i) + " HTTP/1.1\r\n\r\n"));
    }
    for (int i = 0; i < 8; ++i) {
      EXPECT_EQ(Body(socks[i]->ReadResponse()), "GET /again" + std::to_string(i) + " 0 ");
    }
  }
}

TEST_F(HttpServerTest, IdleConnectionsAreClosedAfterTheIdleTimeout) {
  StartServer({.idle_timeout_s = 1, .park_after_ms = 10});
  Socket s(port_);
  ASSERT_TRUE(s.Send("GET /a HTTP/1.1\r\n\r\n"));
  EXPECT_EQ(Body(s.ReadResponse()), "GET /a 0 ");
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(s.Closed());  // within the socket's 5 s receive timeout
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 4s);
}

TEST_F(HttpServerTest, ARequestThatStopsHalfwayTimesOut) {
  StartServer({.read_timeout_s = 1, .park_after_ms = 10});
  Socket s(port_);
  ASSERT_TRUE(s.Send("PUT /k HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc"));
  std::string r = s.ReadResponse();
  ASSERT_EQ(r.rfind("HTTP/1.1 408 ", 0), 0u) << r;
  EXPECT_TRUE(s.Closed());
  EXPECT_EQ(calls_, 0);
}

TEST_F(HttpServerTest, ATrickleOfBytesStillTimesOut) {
  StartServer({.read_timeout_s = 1, .park_after_ms = 10});
  Socket s(port_);
  ASSERT_TRUE(s.Send("PUT /k HTTP/1.1\r\nContent-Length: 1000\r\n\r\n"));
  const auto t0 = std::chrono::steady_clock::now();
  std::thread trickle([&] {
    for (int i = 0; i < 300 && std::chrono::steady_clock::now() - t0 < 3s; ++i) {
      if (!s.Send("x")) break;
      std::this_thread::sleep_for(5ms);
    }
  });
  std::string r = s.ReadResponse();
  trickle.join();
  EXPECT_EQ(r.rfind("HTTP/1.1 408 ", 0), 0u) << r;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2500ms);
  EXPECT_EQ(calls_, 0);
}

TEST_F(HttpServerTest, AHandlerThatThrowsGetsA500AndTheServerStaysUp) {
  server_ = std::make_unique<HttpServer>(
      [](std::string_view, std::string_view target, std::string_view,
         const HeaderLookup&) -> HttpResponse {
        if (target == "/throw") throw std::runtime_error("boom");
        return HttpResponse{.body = "fine"};
      },
      HttpServerOptions{});
  ASSERT_TRUE(server_->Start("127.0.0.1:0").ok());
  Socket s(server_->port());
  ASSERT_TRUE(s.Send("GET /throw HTTP/1.1\r\n\r\n"));
  std::string r = s.ReadResponse();
  EXPECT_EQ(r.rfind("HTTP/1.1 500 ", 0), 0u) << r;
  EXPECT_NE(Body(r).find("boom"), std::string::npos) << r;
  Socket again(server_->port());
  ASSERT_TRUE(again.Send("GET /ok HTTP/1.1\r\n\r\n"));
  EXPECT_EQ(Body(again.ReadResponse()), "fine");
}

TEST_F(HttpServerTest, AStoppedServerCannotStartAgain) {
  StartServer();
  server_->Stop();
  server_->Stop();  // idempotent
  EXPECT_EQ(server_->Start("127.0.0.1:0").code(), StatusCode::kFailedPrecondition);
}

TEST_F(HttpServerTest, StopAnswersRequestsInFlightAndClosesIdleConnections) {
  StartServer();
  Socket idle(port_);
  ASSERT_TRUE(idle.Send("GET /a HTTP/1.1\r\n\r\n"));
  EXPECT_EQ(Body(idle.ReadResponse()), "GET /a 0 ");
  Socket busy(port_);
  ASSERT_TRUE(busy.Send("GET /slow HTTP/1.1\r\n\r\n"));
  std::this_thread::sleep_for(100ms);  // the handler is running
  const auto t0 = std::chrono::steady_clock::now();
  server_->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
  std::string r = busy.ReadResponse();
  EXPECT_EQ(Body(r), "GET /slow 0 ");
  EXPECT_NE(r.find("Connection: close\r\n"), std::string::npos) << r;
  EXPECT_TRUE(busy.Closed());
  EXPECT_TRUE(idle.Closed());
  EXPECT_FALSE(Socket(port_).connected());
}

TEST_F(HttpServerTest, LargeAnswersArriveWhole) {
  StartServer();
  Socket s(port_);
  ASSERT_TRUE(s.Send("GET /big HTTP/1.1\r\n\r\nGET /next HTTP/1.1\r\n\r\n"));
  EXPECT_EQ(Body(s.ReadResponse()), std::string(3 << 20, 'b'));
  EXPECT_EQ(Body(s.ReadResponse()), "GET /next 0 ");
}

TEST_F(HttpServerTest, RefusesConnectionsOverTheLimit) {
  StartServer({.max_connections = 2});
  Socket a(port_), b(port_);
  ASSERT_TRUE(a.Send("GET /a HTTP/1.1\r\n\r\n"));
  ASSERT_TRUE(b.Send("GET /b HTTP/1.1\r\n\r\n"));
  EXPECT_EQ(Body(a.ReadResponse()), "GET /a 0 ");
  EXPECT_EQ(Body(b.ReadResponse()), "GET /b 0 ");
  Socket c(port_);
  std::string r = c.ReadResponse();
  EXPECT_EQ(r.rfind("HTTP/1.1 503 ", 0), 0u) << r;
  EXPECT_TRUE(c.Closed());
}

TEST(HttpServerStartTest, ABusyAddressIsAClearError) {
  HttpServer a([](auto, auto, auto, const HeaderLookup&) { return HttpResponse{}; }, {});
  ASSERT_TRUE(a.Start("127.0.0.1:0").ok());
  HttpServer b([](auto, auto, auto, const HeaderLookup&) { return HttpResponse{}; }, {});
  Status s = b.Start("127.0.0.1:" + std::to_string(a.port()));
  EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.ToString();
  EXPECT_NE(s.message().find("cannot listen"), std::string::npos);
  HttpServer c([](auto, auto, auto, const HeaderLookup&) { return HttpResponse{}; }, {});
  EXPECT_EQ(c.Start("nonsense").code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace gojodb::http
