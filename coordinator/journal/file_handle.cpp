#include "coordinator/journal/file_handle.h"

#include <fcntl.h>
#include <limits.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

namespace conveyor {

FileHandle& FileHandle::operator=(FileHandle&& other) noexcept {
  if (this != &other) {
    reset();
    fd_ = other.release();
  }
  return *this;
}

void FileHandle::reset() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

Status io_error(std::string_view what, const std::filesystem::path& file, int error_number) {
  return Status(ErrorCode::kIo,
                std::string(what) + " " + file.string() + ": " + std::strerror(error_number));
}

Expected<FileHandle> open_file(const std::filesystem::path& file, int flags) {
  for (;;) {
    const int fd = ::open(file.c_str(), flags | O_CLOEXEC, 0644);
    if (fd >= 0) return FileHandle(fd);
    if (errno != EINTR) return io_error("cannot open", file, errno);
  }
}

Status write_all(int fd, std::span<iovec> iov, const std::filesystem::path& file) {
  std::size_t first = 0;
  while (first < iov.size()) {
    if (iov[first].iov_len == 0) {
      ++first;
      continue;
    }
    const std::size_t count = std::min<std::size_t>(iov.size() - first, IOV_MAX);
    const ssize_t written = ::writev(fd, iov.data() + first, static_cast<int>(count));
    if (written < 0) {
      if (errno == EINTR) continue;
      return io_error("cannot write", file, errno);
    }
    // A short write: skip what went out and continue inside the vector it stopped in.
    auto left = static_cast<std::size_t>(written);
    while (left > 0) {
      const std::size_t step = std::min(left, iov[first].iov_len);
      iov[first].iov_base = static_cast<std::uint8_t*>(iov[first].iov_base) + step;
      iov[first].iov_len -= step;
      left -= step;
      if (iov[first].iov_len == 0) ++first;
    }
  }
  return Status::ok_status();
}

Status read_exact(int fd, std::uint64_t offset, std::span<std::uint8_t> out,
                  const std::filesystem::path& file) {
  std::size_t done = 0;
  while (done < out.size()) {
    const ssize_t n =
        ::pread(fd, out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return io_error("cannot read", file, errno);
    }
    if (n == 0) return Status(ErrorCode::kIo, "unexpected end of " + file.string());
    done += static_cast<std::size_t>(n);
  }
  return Status::ok_status();
}

Status sync_data(int fd, const std::filesystem::path& file) {
  for (;;) {
    if (::fdatasync(fd) == 0) return Status::ok_status();
    if (errno != EINTR) return io_error("cannot sync", file, errno);
  }
}

Status sync_directory(const std::filesystem::path& dir) {
  auto handle = open_file(dir.empty() ? std::filesystem::path(".") : dir, O_RDONLY | O_DIRECTORY);
  if (!handle) return handle.status();
  for (;;) {
    if (::fsync(handle->get()) == 0) return Status::ok_status();
    if (errno != EINTR) return io_error("cannot sync directory", dir, errno);
  }
}

}  // namespace conveyor
