// gojodb-netproxy: many fault-injecting TCP links in one process, driven over HTTP.
//
//   gojodb-netproxy --links FILE --control-addr HOST:PORT
//
// FILE has one link a line, `NAME LISTEN_ADDR TARGET_ADDR` (blank lines and lines
// starting with # are skipped). The control API (plain text):
//   GET  /links    one line a link: name, listen and target addresses, open|blocked,
//                  open=, accepted=, reset=, bytes_forward=, bytes_back=
//   POST /block    body: link names separated by spaces, commas or newlines; cuts them
//   POST /unblock  the same, restores them
//   POST /heal     restores every link
//   GET  /healthz  "ok"
// Exit status: 0 after SIGTERM or SIGINT, 1 if a link or the control address cannot be
// bound, 2 on bad flags or a bad links file.
#include <httplib.h>
#include <signal.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tools/netproxy/proxy.h"

namespace {

using gojodb::Result;
using gojodb::Status;
using gojodb::netproxy::Link;

constexpr char kUsage[] = "usage: gojodb-netproxy --links FILE --control-addr HOST:PORT";

struct LinkSpec {
  std::string name, listen, target;
};

[[noreturn]] void Fail(int code, const std::string& reason) {
  std::fprintf(stderr, "gojodb-netproxy: %s\n", reason.c_str());
  std::exit(code);
}

Result<std::vector<LinkSpec>> ReadLinks(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::InvalidArgument("cannot read links file " + path);
  std::vector<LinkSpec> links;
  std::set<std::string> names, listens;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    std::istringstream fields(line);
    std::vector<std::string> f;
    for (std::string w; fields >> w;) f.push_back(w);
    if (f.empty() || f[0][0] == '#') continue;
    const std::string where = path + " line " + std::to_string(n) + ": ";
    if (f.size() != 3) {
      return Status::InvalidArgument(where + "want NAME LISTEN_ADDR TARGET_ADDR");
    }
    if (auto a = gojodb::netproxy::ParseAddr(f[1], /*allow_zero_port=*/true); !a.ok()) {
      return Status::InvalidArgument(where + a.status().message());
    }
    if (auto a = gojodb::netproxy::ParseAddr(f[2]); !a.ok()) {
      return Status::InvalidArgument(where + a.status().message());
    }
    if (!names.insert(f[0]).second) {
      return Status::InvalidArgument(where + "link " + f[0] + " named twice");
    }
    if (f[1].ends_with(":0") == false && !listens.insert(f[1]).second) {
      return Status::InvalidArgument(where + "listen address " + f[1] + " used twice");
    }
    links.push_back({f[0], f[1], f[2]});
  }
  return links;
}

std::vector<std::string> SplitNames(const std::string& text) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : text + " ") {
    if (c == ' ' || c == ',' || c == '\n' || c == '\t' || c == '\r') {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::string links_path, control_addr;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      std::printf("%s\n", kUsage);
      return 0;
    }
    std::string value;
    std::string flag = arg;
    const size_t eq = arg.find('=');
    if (eq != std::string::npos) flag = arg.substr(0, eq);
    if (flag != "--links" && flag != "--control-addr") {
      Fail(2, "unknown flag " + flag + "; " + kUsage);
    }
    if (eq != std::string::npos) {
      value = arg.substr(eq + 1);
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      Fail(2, "flag " + arg + " needs a value; " + kUsage);
    }
    (flag == "--links" ? links_path : control_addr) = value;
  }
  if (links_path.empty() || control_addr.empty()) Fail(2, kUsage);
  auto control = gojodb::netproxy::ParseAddr(control_addr, /*allow_zero_port=*/true);
  if (!control.ok()) Fail(2, "--control-addr: " + control.status().message());
  auto specs = ReadLinks(links_path);
  if (!specs.ok()) Fail(2, specs.status().message());

  // Signals are taken by a thread of their own, before any other thread starts.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  std::vector<std::unique_ptr<Link>> links;
  std::map<std::string, Link*> by_name;
  for (const LinkSpec& s : *specs) {
    auto link = Link::Start(s.name, s.listen, s.target);
    if (!link.ok()) Fail(1, "link " + s.name + ": " + link.status().message());
    by_name[s.name] = link->get();
    links.push_back(std::move(link).value());
  }

  std::mutex mu;  // one control request at a time: a block is all or nothing
  httplib::Server server;
  server.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok\n", "text/plain");
  });
  server.Get("/links", [&](const httplib::Request&, httplib::Response& res) {
    std::string out;
    for (const auto& l : links) {
      auto st = l->stats();
      out += l->name() + " " + l->listen_addr() + " " + l->target_addr() + " " +
             (l->blocked() ? "blocked" : "open") + " open=" + std::to_string(st.open) +
             " accepted=" + std::to_string(st.accepted) + " reset=" + std::to_string(st.reset) +
             " bytes_forward=" + std::to_string(st.bytes_forward) +
             " bytes_back=" + std::to_string(st.bytes_back) + "\n";
    }
    res.set_content(out, "text/plain");
  });
  auto set_blocked = [&](bool blocked) {
    return [&, blocked](const httplib::Request& req, httplib::Response& res) {
      std::vector<std::string> names = SplitNames(req.body);
      for (auto& n : SplitNames(req.get_param_value("links"))) names.push_back(n);
      std::lock_guard lock(mu);
      for (const auto& n : names) {
        if (!by_name.contains(n)) {
          res.status = 404;
          res.set_content("unknown link " + n + "\n", "text/plain");
          return;
        }
      }
      for (const auto& n : names) by_name[n]->SetBlocked(blocked);
      res.set_content(
          std::string(blocked ? "blocked " : "unblocked ") + std::to_string(names.size()) + "\n",
          "text/plain");
    };
  };
  server.Post("/block", set_blocked(true));
  server.Post("/unblock", set_blocked(false));
  server.Post("/heal", [&](const httplib::Request&, httplib::Response& res) {
    std::lock_guard lock(mu);
    for (const auto& l : links) l->SetBlocked(false);
    res.set_content("healed " + std::to_string(links.size()) + "\n", "text/plain");
  });

  const std::string host = gojodb::netproxy::FormatAddr(*control);
  const std::string bind_host = host.substr(0, host.rfind(':'));
  int port = ntohs(control->sin_port);
  if (port == 0) {
    port = server.bind_to_any_port(bind_host);
  } else if (!server.bind_to_port(bind_host, port)) {
    port = -1;
  }
  if (port <= 0) Fail(1, "cannot listen on --control-addr " + control_addr);

  std::thread signals([&] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    server.stop();
  });
  std::printf("gojodb-netproxy: %zu links, control http://%s:%d\n", links.size(), bind_host.c_str(),
              port);
  std::fflush(stdout);
  server.listen_after_bind();
  // Stopped by a signal; wake the signal thread if the server ended on its own.
  pthread_kill(signals.native_handle(), SIGTERM);
  signals.join();
  links.clear();
  return 0;
}
