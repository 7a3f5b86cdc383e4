// Server configuration: a YAML file (--config), overridden by flags, overridden by
// GOJODB_* environment variables (API.md). Every setting has one dotted key
// ("storage.sync_writes"), one flag (--storage-sync-writes) and one variable
// (GOJODB_STORAGE_SYNC_WRITES). Unknown keys in the file are errors, not ignored.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "internal/status.h"

namespace CLI {
class App;
}

namespace gojodb::server {

struct Setting {
  std::string key;            // dotted, e.g. "storage.engine"
  std::string default_value;  // empty with required=false means unset
  std::string help;
  bool required = false;
};

class Config {
 public:
  explicit Config(std::vector<Setting> settings);

  // Adds --config and one flag per setting to `app`. Call before app.parse().
  void AddFlags(CLI::App* app);
  // Merges file, flags and environment (in that order of precedence, lowest first)
  // and checks required settings. Call after app.parse().
  Status Resolve();

  const std::string& Get(const std::string& key) const;
  Result<bool> GetBool(const std::string& key) const;
  Result<uint64_t> GetUint(const std::string& key) const;

  static std::string FlagName(const std::string& key);  // "storage.engine" -> "--storage-engine"
  static std::string EnvName(const std::string& key);   // -> "GOJODB_STORAGE_ENGINE"

 private:
  std::vector<Setting> settings_;
  std::string config_file_;
  std::map<std::string, std::string> flag_values_;
  std::map<std::string, std::string> values_;
};

}  // namespace gojodb::server
