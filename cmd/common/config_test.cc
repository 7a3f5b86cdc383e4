#include "cmd/common/config.h"

#include <gtest/gtest.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "cmd/common/data_dir.h"
#include "cmd/common/server_main.h"

namespace gojodb::server {
namespace {

namespace fs = std::filesystem;

std::vector<Setting> Settings() {
  return {{"data_dir", "", "data directory", true},
          {"storage.engine", "rocksdb", "engine", false},
          {"storage.sync_writes", "true", "fsync", false},
          {"http_addr", "", "http", false}};
}

Status Parse(Config& c, std::vector<std::string> args) {
  CLI::App app;
  c.AddFlags(&app);
  std::vector<const char*> argv = {"prog"};
  for (auto& a : args) argv.push_back(a.c_str());
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::ParseError& e) {
    return Status::InvalidArgument(e.what());
  }
  return c.Resolve();
}

TEST(ConfigTest, FileThenFlagsThenEnvironment) {
  fs::path file =
      fs::temp_directory_path() / ("gojodb-config-" + std::to_string(::getpid()) + ".yaml");
  std::ofstream(file) << "data_dir: /from/file\nstorage:\n  engine: memory\n  sync_writes: false\n";
  Config c(Settings());
  ::unsetenv("GOJODB_STORAGE_SYNC_WRITES");
  ASSERT_TRUE(Parse(c, {"--config", file.string(), "--data-dir", "/from/flag"}).ok());
  EXPECT_EQ(c.Get("data_dir"), "/from/flag");
  EXPECT_EQ(c.Get("storage.engine"), "memory");
  EXPECT_FALSE(*c.GetBool("storage.sync_writes"));
  ::setenv("GOJODB_DATA_DIR", "/from/env", 1);
  Config c2(Settings());
  ASSERT_TRUE(Parse(c2, {"--config", file.string(), "--data-dir", "/from/flag"}).ok());
  EXPECT_EQ(c2.Get("data_dir"), "/from/env");
  ::unsetenv("GOJODB_DATA_DIR");
  fs::remove(file);
}

TEST(ConfigTest, ErrorsAreClear) {
  Config missing(Settings());
  auto s = Parse(missing, {});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("--data-dir is required"), std::string::npos) << s.message();

  fs::path file =
      fs::temp_directory_path() / ("gojodb-config-bad-" + std::to_string(::getpid()) + ".yaml");
  std::ofstream(file) << "data_dir: /x\nstorage:\n  engin: memory\n";
  Config unknown(Settings());
  s = Parse(unknown, {"--config", file.string()});
  EXPECT_NE(s.message().find("unknown setting 'storage.engin'"), std::string::npos) << s.message();
  std::ofstream(file) << "data_dir: [unterminated\n";
  Config broken(Settings());
  EXPECT_EQ(Parse(broken, {"--config", file.string()}).code(), StatusCode::kInvalidArgument);
  fs::remove(file);

  Config typed(Settings());
  ASSERT_TRUE(Parse(typed, {"--data-dir", "/x", "--storage-sync-writes", "maybe"}).ok());
  EXPECT_FALSE(typed.GetBool("storage.sync_writes").ok());
  EXPECT_FALSE(typed.GetUint("storage.engine").ok());
  EXPECT_EQ(Config::FlagName("storage.sync_writes"), "--storage-sync-writes");
  EXPECT_EQ(Config::EnvName("storage.sync_writes"), "GOJODB_STORAGE_SYNC_WRITES");
}

TEST(DataDirLockTest, SecondHolderIsRefusedWithThePid) {
  fs::path dir =
      fs::temp_directory_path() / ("gojodb-lock-" + std::to_string(::getpid())) / "nested";
  auto first = DataDirLock::Acquire(dir.string());
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  auto second = DataDirLock::Acquire(dir.string());
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(second.status().message().find("pid " + std::to_string(::getpid())), std::string::npos)
      << second.status().message();
  first->reset();
  EXPECT_TRUE(DataDirLock::Acquire(dir.string()).ok());
  fs::remove_all(dir.parent_path());
}

// The servers run on jemalloc (decision 32): glibc's malloc cost a tenth of the
// server's CPU in bulk ingest. This binary is linked as they are.
TEST(AllocatorTest, ServersRunOnJemalloc) {
  const std::string name = AllocatorName();
#ifdef GOJODB_EXPECT_JEMALLOC
  EXPECT_EQ(name.rfind("jemalloc ", 0), 0u) << name;
  EXPECT_GT(name.size(), std::string("jemalloc ").size()) << "no version: " << name;
#else
  EXPECT_EQ(name, "libc malloc");
#endif
}

}  // namespace
}  // namespace gojodb::server
