#include "coordinator/batch/jsonl_appender.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace conveyor {

Expected<JsonlAppender> JsonlAppender::open(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    const int error = errno;
    return Status(ErrorCode::kIo,
                  "cannot open " + path.string() + " for appending: " + std::strerror(error));
  }
  return JsonlAppender(fd, path);
}

JsonlAppender::JsonlAppender(JsonlAppender&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), path_(std::move(other.path_)), broken_(other.broken_) {}

JsonlAppender& JsonlAppender::operator=(JsonlAppender&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    path_ = std::move(other.path_);
    broken_ = other.broken_;
  }
  return *this;
}

JsonlAppender::~JsonlAppender() {
  if (fd_ >= 0) ::close(fd_);
}

Status JsonlAppender::io_error(const char* what, int error) const {
  return Status(ErrorCode::kIo,
                std::string(what) + " " + path_.string() + ": " + std::strerror(error));
}

Status JsonlAppender::append(std::string_view line) {
  if (fd_ < 0) return Status(ErrorCode::kInvalidArgument, path_.string() + " is closed");
  if (broken_) {
    return Status(ErrorCode::kIo,
                  path_.string() + " ends in a fragment of a failed write; not appending");
  }
  if (line.empty() || line.back() != '\n' ||
      line.substr(0, line.size() - 1).find('\n') != std::string_view::npos) {
    return Status(
        ErrorCode::kInvalidArgument,
        "a JSONL line must end in its only newline (appending to " + path_.string() + ")");
  }
  std::size_t written = 0;
  while (written < line.size()) {
    const ssize_t n = ::write(fd_, line.data() + written, line.size() - written);
    if (n < 0) {
      const int error = errno;
      if (error == EINTR) continue;
      if (written > 0 && !cut_fragment(written)) broken_ = true;
      return io_error("cannot append to", error);
    }
    written += static_cast<std::size_t>(n);
  }
  return Status::ok_status();
}

bool JsonlAppender::cut_fragment(std::size_t written) {
  struct stat info {};
  if (::fstat(fd_, &info) != 0) return false;
  const off_t fragment = static_cast<off_t>(written);
  if (info.st_size < fragment) return false;
  return ::ftruncate(fd_, info.st_size - fragment) == 0;
}

Status JsonlAppender::sync() {
  if (fd_ < 0) return Status(ErrorCode::kInvalidArgument, path_.string() + " is closed");
  if (::fdatasync(fd_) != 0) return io_error("cannot sync", errno);
  return Status::ok_status();
}

Status JsonlAppender::close() {
  if (fd_ < 0) return Status(ErrorCode::kInvalidArgument, path_.string() + " is closed");
  // The descriptor is gone after close() even when it fails: never retry it.
  const int result = ::close(std::exchange(fd_, -1));
  if (result != 0) return io_error("cannot close", errno);
  return Status::ok_status();
}

}  // namespace conveyor
