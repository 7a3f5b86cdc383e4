#include "cmd/common/config.h"

#include <yaml-cpp/yaml.h>

#include <CLI/CLI.hpp>
#include <charconv>
#include <cstdlib>
#include <filesystem>

namespace gojodb::server {
namespace {

void Flatten(const YAML::Node& node, const std::string& prefix,
             std::map<std::string, std::string>* out, std::string* error) {
  if (node.IsMap()) {
    for (const auto& kv : node) {
      std::string key = kv.first.as<std::string>();
      Flatten(kv.second, prefix.empty() ? key : prefix + "." + key, out, error);
    }
  } else if (node.IsScalar()) {
    (*out)[prefix] = node.as<std::string>();
  } else if (node.IsNull()) {
    // an empty entry: leave the default
  } else if (error->empty()) {
    *error = "'" + prefix + "' must be a single value";
  }
}

}  // namespace

Config::Config(std::vector<Setting> settings) : settings_(std::move(settings)) {}

std::string Config::FlagName(const std::string& key) {
  std::string f = "--" + key;
  for (auto& c : f) {
    if (c == '.' || c == '_') c = '-';
  }
  return f;
}

std::string Config::EnvName(const std::string& key) {
  std::string e = "GOJODB_" + key;
  for (auto& c : e) {
    if (c == '.' || c == '-') c = '_';
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return e;
}

void Config::AddFlags(CLI::App* app) {
  app->add_option("--config", config_file_, "YAML configuration file");
  for (const auto& s : settings_) {
    std::string help = s.help;
    if (!s.default_value.empty()) help += " (default " + s.default_value + ")";
    help += " [" + EnvName(s.key) + "]";
    app->add_option(FlagName(s.key), flag_values_[s.key], help);
  }
}

Status Config::Resolve() {
  values_.clear();
  for (const auto& s : settings_) {
    if (!s.default_value.empty()) values_[s.key] = s.default_value;
  }
  if (!config_file_.empty()) {
    std::map<std::string, std::string> file;
    try {
      YAML::Node root = YAML::LoadFile(config_file_);
      std::string error;
      if (!root.IsNull()) {
        if (!root.IsMap())
          return Status::InvalidArgument("config " + config_file_ + ": expected a mapping");
        Flatten(root, "", &file, &error);
      }
      if (!error.empty()) return Status::InvalidArgument("config " + config_file_ + ": " + error);
    } catch (const YAML::Exception& e) {
      return Status::InvalidArgument("config " + config_file_ + ": " + e.what());
    }
    for (auto& [k, v] : file) {
      bool known = false;
      for (const auto& s : settings_) known = known || s.key == k;
      if (!known)
        return Status::InvalidArgument("config " + config_file_ + ": unknown setting '" + k + "'");
      values_[k] = v;
    }
  }
  for (const auto& [k, v] : flag_values_) {
    if (!v.empty()) values_[k] = v;
  }
  for (const auto& s : settings_) {
    if (const char* env = std::getenv(EnvName(s.key).c_str()); env && *env) values_[s.key] = env;
  }
  for (const auto& s : settings_) {
    if (s.required && Get(s.key).empty()) {
      return Status::InvalidArgument(FlagName(s.key) + " is required");
    }
  }
  return Status::OK();
}

const std::string& Config::Get(const std::string& key) const {
  static const std::string kEmpty;
  auto it = values_.find(key);
  return it == values_.end() ? kEmpty : it->second;
}

Result<bool> Config::GetBool(const std::string& key) const {
  const auto& v = Get(key);
  if (v == "true" || v == "1" || v == "yes" || v == "on") return true;
  if (v == "false" || v == "0" || v == "no" || v == "off") return false;
  return Status::InvalidArgument(FlagName(key) + " must be true or false, got '" + v + "'");
}

Result<uint64_t> Config::GetUint(const std::string& key) const {
  const auto& v = Get(key);
  uint64_t out = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  if (v.empty() || ec != std::errc() || p != v.data() + v.size()) {
    return Status::InvalidArgument(FlagName(key) + " must be a non-negative integer, got '" + v +
                                   "'");
  }
  return out;
}

}  // namespace gojodb::server
