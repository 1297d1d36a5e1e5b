// The file behind the disk tier: created with its space reserved, locked while open so
// that other processes can tell it from a crashed process's leftover, and removed when
// its owner goes away, including when construction fails halfway.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>

#include "common/status.h"

namespace conveyor {

class BlockFile {
 public:
  // In `directory` (created if missing): removes every kv-*.blocks file that no live
  // BlockFile holds, then creates kv-<pid>-<n>.blocks of `bytes` reserved bytes, opened
  // with O_DIRECT when the file system accepts it.
  // Throws Error: kResourceExhausted naming the file when the file system has no room,
  // kIo otherwise.
  static BlockFile create(const std::filesystem::path& directory, std::uint64_t bytes);

  ~BlockFile();
  BlockFile(BlockFile&& other) noexcept;
  BlockFile& operator=(BlockFile&&) = delete;
  BlockFile(const BlockFile&) = delete;
  BlockFile& operator=(const BlockFile&) = delete;

  const std::filesystem::path& path() const { return path_; }
  bool direct() const { return direct_; }

  // All `size` bytes at `offset`, retrying short transfers and EINTR. Errors are
  // io_error_status() naming the file and offset.
  Status write_at(std::uint64_t offset, const std::byte* data, std::size_t size) const;
  Status read_at(std::uint64_t offset, std::byte* data, std::size_t size) const;

 private:
  BlockFile() = default;

  std::filesystem::path path_;
  int fd_ = -1;
  bool direct_ = false;
};

}  // namespace conveyor
