#include "coordinator/batch/line_reader.h"

#include <algorithm>
#include <cstring>

namespace conveyor {

LineReader::LineReader(std::FILE* file, std::size_t max_bytes)
    : file_(file), max_bytes_(max_bytes), buffer_(std::size_t{1} << 16) {}

std::optional<LineReader::Line> LineReader::next() {
  line_.clear();
  std::uint64_t length = 0;
  bool started = false;
  while (true) {
    if (begin_ == end_) {
      begin_ = 0;
      end_ = std::fread(buffer_.data(), 1, buffer_.size(), file_);
      if (end_ == 0) break;  // end of file (or an error)
    }
    started = true;
    const char* from = buffer_.data() + begin_;
    const std::size_t available = end_ - begin_;
    const auto* newline = static_cast<const char*>(std::memchr(from, '\n', available));
    const std::size_t n = newline != nullptr ? static_cast<std::size_t>(newline - from) : available;
    const std::size_t room = max_bytes_ + 1 - std::min(line_.size(), max_bytes_ + 1);
    line_.append(from, std::min(n, room));
    length += n;
    begin_ += n;
    if (newline != nullptr) {
      ++begin_;  // the '\n'
      return Line{line_, length};
    }
  }
  if (!started) return std::nullopt;
  return Line{line_, length};
}

}  // namespace conveyor
