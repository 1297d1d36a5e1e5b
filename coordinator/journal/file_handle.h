// The POSIX file calls the journal needs, with errno translated into Status where it
// is first seen, and one owner per descriptor.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <filesystem>
#include <span>
#include <string_view>

#include "common/status.h"

namespace conveyor {

// Owns one file descriptor; closes it on destruction. Move-only.
class FileHandle {
 public:
  FileHandle() = default;
  explicit FileHandle(int fd) : fd_(fd) {}
  FileHandle(FileHandle&& other) noexcept : fd_(other.release()) {}
  FileHandle& operator=(FileHandle&& other) noexcept;
  FileHandle(const FileHandle&) = delete;
  FileHandle& operator=(const FileHandle&) = delete;
  ~FileHandle() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void reset();

 private:
  int fd_ = -1;
};

// kIo naming the operation, the file and the operating system's reason.
Status io_error(std::string_view what, const std::filesystem::path& file, int error_number);

// Opens `file` with `flags` (O_CLOEXEC is added); mode 0644 when it is created.
Expected<FileHandle> open_file(const std::filesystem::path& file, int flags);

// Writes every byte the vectors describe, resuming after short writes and EINTR and
// splitting at IOV_MAX. `iov` is consumed (its entries are advanced in place).
Status write_all(int fd, std::span<iovec> iov, const std::filesystem::path& file);

// Reads exactly `out.size()` bytes at `offset`; kIo when the file ends first.
Status read_exact(int fd, std::uint64_t offset, std::span<std::uint8_t> out,
                  const std::filesystem::path& file);

// fdatasync: the file's data and the metadata needed to read it back are on disk.
Status sync_data(int fd, const std::filesystem::path& file);

// fsync of a directory: a file created, renamed or removed in it stays so after a crash.
Status sync_directory(const std::filesystem::path& dir);

}  // namespace conveyor
