#include "coordinator/cluster/result_stream.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

namespace conveyor {
namespace {

Status io_error(const std::string& what, const std::filesystem::path& file) {
  return Status(ErrorCode::kIo, what + " " + file.string() + ": " + std::strerror(errno));
}

}  // namespace

std::string custom_id_of(const std::string& line) {
  const nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return {};
  auto it = j.find("custom_id");
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

ResultStream::ResultStream(std::filesystem::path file, int fd) : file_(std::move(file)), fd_(fd) {}

ResultStream::~ResultStream() {
  if (fd_ >= 0) ::close(fd_);
}

Expected<std::unique_ptr<ResultStream>> ResultStream::open(const std::filesystem::path& file,
                                                           ResultStreamContents* contents) {
  const int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return io_error("cannot open", file);
  std::unique_ptr<ResultStream> stream(new ResultStream(file, fd));
  // Read it whole: one job's results, read once at start.
  std::string text;
  char buffer[1 << 16];
  while (true) {
    const ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0) return io_error("cannot read", file);
    if (n == 0) break;
    text.append(buffer, static_cast<std::size_t>(n));
  }
  std::size_t at = 0;
  while (at < text.size()) {
    const std::size_t newline = text.find('\n', at);
    if (newline == std::string::npos) break;  // cut by a crash: dropped below
    const std::string line = text.substr(at, newline - at);
    if (line.size() < 2 || (line[0] != 'R' && line[0] != 'E')) {
      return Status(ErrorCode::kMalformed, file.string() + " is not a result stream (record " +
                                               std::to_string(stream->offsets_.size() + 1) + ")");
    }
    stream->offsets_.push_back(at);
    if (contents != nullptr) {
      contents->custom_ids.push_back(custom_id_of(line.substr(1)));
      if (line[0] == 'E') ++contents->errors;
    }
    at = newline + 1;
  }
  if (at < text.size()) {
    if (::ftruncate(fd, static_cast<off_t>(at)) != 0) return io_error("cannot repair", file);
    if (contents != nullptr) contents->repaired_bytes = text.size() - at;
  }
  stream->end_ = at;
  return stream;
}

Status ResultStream::append(const ResultRecord& record) {
  std::string line;
  line.reserve(record.line.size() + 2);
  line += record.error ? 'E' : 'R';
  line += record.line;
  line += '\n';
  std::size_t written = 0;
  while (written < line.size()) {
    const ssize_t n = ::pwrite(fd_, line.data() + written, line.size() - written,
                               static_cast<off_t>(end_ + written));
    if (n < 0) {
      if (errno == EINTR) continue;
      // A partial record is past end_: the next append overwrites it, and a
      // restart removes it as a cut line.
      return io_error("cannot write", file_);
    }
    written += static_cast<std::size_t>(n);
  }
  offsets_.push_back(end_);
  end_ += line.size();
  return {};
}

Status ResultStream::sync() {
  if (::fdatasync(fd_) != 0) return io_error("cannot sync", file_);
  return {};
}

Expected<std::vector<ResultRecord>> ResultStream::read(std::uint64_t offset,
                                                       std::size_t max) const {
  std::vector<ResultRecord> records;
  if (offset >= offsets_.size() || max == 0) return records;
  // Not offset + max: a large max would wrap around and end the range before it began.
  const std::uint64_t last = offset + std::min<std::uint64_t>(max, offsets_.size() - offset);
  const std::uint64_t begin = offsets_[offset];
  const std::uint64_t end = last < offsets_.size() ? offsets_[last] : end_;
  std::string text(end - begin, '\0');
  std::size_t got = 0;
  while (got < text.size()) {
    const ssize_t n =
        ::pread(fd_, text.data() + got, text.size() - got, static_cast<off_t>(begin + got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return io_error("cannot read", file_);
    got += static_cast<std::size_t>(n);
  }
  std::size_t at = 0;
  for (std::uint64_t i = offset; i < last; ++i) {
    const std::size_t newline = text.find('\n', at);
    records.push_back({text[at] == 'E', text.substr(at + 1, newline - at - 1)});
    at = newline + 1;
  }
  return records;
}

void ResultStream::remove() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  std::error_code ec;
  std::filesystem::remove(file_, ec);
}

}  // namespace conveyor
