// FileLock: an exclusive lock on a job's output file for as long as the job runs, so
// that a second `conveyor run` with the same output (started by mistake, or by a
// scheduler retrying too early) stops with a clear error instead of writing every
// line twice. An flock(2) lock: released by the kernel when the process dies, so a
// crashed run never leaves a stale lock behind.
#pragma once

#include <filesystem>

#include "common/status.h"

namespace conveyor {

class FileLock {
 public:
  // Creates the file when absent. kUnavailable when another open file holds the
  // lock, kIo when the file cannot be opened.
  static Expected<FileLock> acquire(const std::filesystem::path& path);

  FileLock(FileLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  FileLock& operator=(FileLock&& other) noexcept;
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  ~FileLock();

 private:
  explicit FileLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace conveyor
