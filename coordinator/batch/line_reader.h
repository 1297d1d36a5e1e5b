// LineReader: the lines of a batch file with bounded memory. A line longer than the
// limit is still consumed whole, so the next line starts where it should, but only
// its first limit + 1 bytes are kept: a hostile 10 GB line costs 10 GB of reading,
// not of memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace conveyor {

class LineReader {
 public:
  struct Line {
    std::string_view text;     // without '\n'; cut to max_bytes + 1 when longer
    std::uint64_t length = 0;  // the whole line's length, without '\n'
  };

  // Does not own `file`.
  LineReader(std::FILE* file, std::size_t max_bytes);

  // The next line; nullopt at the end of the file (or on a read error: see error()).
  // A last line without '\n' is a line. The view is valid until the next call.
  std::optional<Line> next();
  bool error() const { return std::ferror(file_) != 0; }

 private:
  std::FILE* file_;
  std::size_t max_bytes_;
  std::vector<char> buffer_;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
  std::string line_;
};

}  // namespace conveyor
