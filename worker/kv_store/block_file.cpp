#include "worker/kv_store/block_file.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <string>
#include <system_error>
#include <utility>

#include "worker/kv_store/io_status.h"

namespace conveyor {

namespace {

bool is_block_file_name(const std::string& name) {
  return name.size() > 9 && name.starts_with("kv-") && name.ends_with(".blocks");
}

// Every live BlockFile holds an exclusive flock on its file, so a file whose lock can be
// taken was left by a process that is gone: its blocks are stale and its space leaked.
void remove_stale_files(const std::filesystem::path& directory) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(directory, ec)) {
    if (!entry.is_regular_file() || !is_block_file_name(entry.path().filename().string())) {
      continue;
    }
    const std::string path = entry.path().string();
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) continue;  // its owner removed it meanwhile
      throw Error(ErrorCode::kIo, io_error_status(errno, "cannot open stale " + path).message());
    }
    const bool live = ::flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    if (!live && ::unlink(path.c_str()) != 0 && errno != ENOENT) {
      const int err = errno;
      ::close(fd);
      throw Error(ErrorCode::kIo, io_error_status(err, "cannot remove stale " + path).message());
    }
    ::close(fd);
  }
  if (ec) fail(ErrorCode::kIo, "cannot list " + directory.string() + ": " + ec.message());
}

[[noreturn]] void fail_with(const Status& status) {
  fail(status.code(), status.message());
}

}  // namespace

BlockFile BlockFile::create(const std::filesystem::path& directory, std::uint64_t bytes) {
  std::error_code ec;
  std::filesystem::create_directories(directory, ec);
  if (ec) fail(ErrorCode::kIo, "cannot create " + directory.string() + ": " + ec.message());
  remove_stale_files(directory);

  static std::atomic<std::uint64_t> next_file{0};
  BlockFile file;
  file.path_ = directory / ("kv-" + std::to_string(::getpid()) + "-" +
                            std::to_string(next_file.fetch_add(1)) + ".blocks");
  const std::string path = file.path_.string();
  file.fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (file.fd_ < 0) {
    const int err = errno;
    file.path_.clear();  // not ours to remove
    fail_with(io_error_status(err, "cannot create " + path));
  }
  if (::flock(file.fd_, LOCK_EX | LOCK_NB) != 0) {
    fail_with(io_error_status(errno, "cannot lock " + path));
  }
  // Set after open, not in open(): a file system that rejects O_DIRECT does so with
  // EINVAL here, and the file is kept with buffered I/O.
  const int flags = ::fcntl(file.fd_, F_GETFL);
  file.direct_ = flags >= 0 && ::fcntl(file.fd_, F_SETFL, flags | O_DIRECT) == 0;

  // Checked before reserving: some file systems fill the disk block by block before
  // giving up with ENOSPC, which would starve every other writer meanwhile.
  struct statvfs fs {};
  if (::fstatvfs(file.fd_, &fs) == 0) {
    const std::uint64_t free_bytes = static_cast<std::uint64_t>(fs.f_bavail) * fs.f_frsize;
    if (bytes > free_bytes) {
      fail(ErrorCode::kResourceExhausted, "cannot reserve " + std::to_string(bytes) +
                                              " bytes of K/V blocks in " + path + ": only " +
                                              std::to_string(free_bytes) + " bytes free");
    }
  }
  const int err = ::posix_fallocate(file.fd_, 0, static_cast<off_t>(bytes));
  if (err != 0) {
    fail_with(io_error_status(
        err, "cannot reserve " + std::to_string(bytes) + " bytes of K/V blocks in " + path));
  }
  return file;
}

BlockFile::BlockFile(BlockFile&& other) noexcept
    : path_(std::move(other.path_)), fd_(std::exchange(other.fd_, -1)), direct_(other.direct_) {
  other.path_.clear();
}

BlockFile::~BlockFile() {
  // Unlinked before closing, so no instant exists where the file is unlocked but still
  // named (another process would take it for stale; harmless, but noisy).
  if (!path_.empty()) ::unlink(path_.c_str());
  if (fd_ >= 0) ::close(fd_);
}

Status BlockFile::write_at(std::uint64_t offset, const std::byte* data, std::size_t size) const {
  std::size_t done = 0;
  while (done < size) {
    const ssize_t n = ::pwrite(fd_, data + done, size - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      return io_error_status(
          errno, "cannot write " + path_.string() + " at offset " + std::to_string(offset + done));
    }
    if (n == 0) {  // not an error by POSIX, but retrying would spin
      return io_error_status(
          EIO, "cannot write " + path_.string() + " at offset " + std::to_string(offset + done));
    }
    done += static_cast<std::size_t>(n);
  }
  return Status::ok_status();
}

Status BlockFile::read_at(std::uint64_t offset, std::byte* data, std::size_t size) const {
  std::size_t done = 0;
  while (done < size) {
    const ssize_t n = ::pread(fd_, data + done, size - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      return io_error_status(
          errno, "cannot read " + path_.string() + " at offset " + std::to_string(offset + done));
    }
    if (n == 0) {
      return Status(ErrorCode::kIo, "cannot read " + path_.string() + " at offset " +
                                        std::to_string(offset + done) +
                                        ": the file ends early (truncated by another process?)");
    }
    done += static_cast<std::size_t>(n);
  }
  return Status::ok_status();
}

}  // namespace conveyor
