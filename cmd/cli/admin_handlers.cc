// The cluster administration commands (node, shard, controller, settings, tso): they
// call the controller's operator API, so --addr names a controller.
#include <charconv>
#include <map>
#include <nlohmann/json.hpp>

#include "cmd/cli/command_args.h"
#include "cmd/cli/commands.h"
#include "cmd/cli/format.h"
#include "cmd/cli/render_admin.h"

namespace gojodb::cli {
namespace {

constexpr uint64_t kMaxTimestamps = 65536;  // GetTimestampsRequest.count

// {"NAME": VALUE, ...} from NAME=VALUE words, VALUE a non-negative decimal integer.
// The controller checks the names and ranges.
Result<std::string> SettingsPatch(const std::vector<std::string>& words) {
  std::map<std::string, uint64_t> values;
  for (const std::string& word : words) {
    const size_t eq = word.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Status::InvalidArgument("settings are NAME=VALUE, got '" + EscapeForDisplay(word) +
                                     "'");
    }
    const std::string name = word.substr(0, eq);
    const std::string text = word.substr(eq + 1);
    uint64_t value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos ||
        ec != std::errc() || end != text.data() + text.size()) {
      return Status::InvalidArgument("the value of " + EscapeForDisplay(name) +
                                     " must be a non-negative integer, got '" +
                                     EscapeForDisplay(text) + "'");
    }
    if (!values.emplace(name, value).second) {
      return Status::InvalidArgument(EscapeForDisplay(name) + " is given more than once");
    }
  }
  nlohmann::json patch = nlohmann::json::object();
  for (const auto& [name, value] : values) patch[name] = value;
  return DumpJson(patch);
}

}  // namespace

int Cli::DoNodeList(const Args& a) {
  auto backend = BackendFor(a.g.addr, a.g.timeout_ms);
  if (!backend.ok()) return Fail(backend.status());
  auto r = (*backend)->ListNodes();
  if (!r.ok()) return Fail(r.status());
  Print(RenderNodeList(a.g.output, *r));
  return 0;
}

int Cli::DoNodeDecommission(const Args& a) {
  auto backend = BackendFor(a.g.addr, a.g.timeout_ms);
  if (!backend.ok()) return Fail(backend.status());
  Status s = (*backend)->DecommissionNode(a.id);
  if (!s.ok()) return Fail(s);
  Print(RenderDecommissioned(a.g.output, a.id));
  return 0;
}

int Cli::DoShardList(const Args& a) {
  auto backend = BackendFor(a.g.addr, a.g.timeout_ms);
  if (!backend.ok()) return Fail(backend.status());
  auto r = (*backend)->GetShardMap();
  if (!r.ok()) return Fail(r.status());
  Print(RenderShardMap(a.g.output, *r));
  return 0;
}

int Cli::DoControllerAdd(const Args& a) {
  if (a.member_addr.empty()) return Usage("controller add", "ADDR must not be empty");
  auto backend = BackendFor(a.g.addr, a.g.timeout_ms);
  if (!backend.ok()) return Fail(backend.status());
  Status s = (*backend)->AddController(a.id, a.member_addr);
  if (!s.ok()) return Fail(s);
  Print(RenderControllerAdded(a.g.output, a.id, a.member_addr));
  return 0;
}

int Cli::DoControllerRemove(const Args& a) {
  auto backend = BackendFor(a.g.addr, a.g.timeout_ms);
  if (!backend.ok()) return Fail(backend.status());
  Status s = (*backend)->RemoveController(a.id);
  if (!s.ok()) return Fail(s);
  Print(RenderControllerRemoved(a.g.output, a.id));
  return 0;
}

int Cli::DoSettingsGet(const Args& a) {
  auto backend = BackendFor(a.g.addr, a.g.timeout_ms);
  if (!backend.ok()) return Fail(backend.status());
  auto r = (*backend)->GetSettings();
  if (!r.ok()) return Fail(r.status());
  Print(RenderSettings(a.g.output, *r));
  return 0;
}

int Cli::DoSettingsSet(const Args& a) {
  auto patch = SettingsPatch(a.settings);
  if (!patch.ok()) return Usage("settings set", patch.status().message());
  auto backend = BackendFor(a.g.addr, a.g.timeout_ms);
  if (!backend.ok()) return Fail(backend.status());
  auto r = (*backend)->UpdateSettings(*patch);
  if (!r.ok()) return Fail(r.status());
  Print(RenderSettings(a.g.output, *r));
  return 0;
}

int Cli::DoTso(const Args& a) {
  if (a.count == 0 || a.count > kMaxTimestamps) {
    return Usage("tso", "--count must be between 1 and " + std::to_string(kMaxTimestamps));
  }
  auto backend = BackendFor(a.g.addr, a.g.timeout_ms);
  if (!backend.ok()) return Fail(backend.status());
  auto r = (*backend)->GetTimestamps(static_cast<uint32_t>(a.count));
  if (!r.ok()) return Fail(r.status());
  Print(RenderTimestamps(a.g.output, *r));
  return 0;
}

}  // namespace gojodb::cli
