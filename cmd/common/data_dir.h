// The data directory: created if missing, and held by exactly one process through an
// advisory lock (flock) on DIR/LOCK.gojodb, released by the kernel when the process
// dies, so kill -9 never leaves a stale lock behind.
#pragma once

#include <memory>
#include <string>

#include "internal/status.h"

namespace gojodb::server {

class DataDirLock {
 public:
  // Fails with FAILED_PRECONDITION naming the holder's pid when another process holds
  // the directory, or with the OS error when it cannot be created or written.
  static Result<std::unique_ptr<DataDirLock>> Acquire(const std::string& dir);
  ~DataDirLock();

 private:
  explicit DataDirLock(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace gojodb::server
