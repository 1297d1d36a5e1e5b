// Appends lines to a JSONL file (the output and error files of a batch job), one
// write() per line on an O_APPEND descriptor, so that a process killed mid-write
// leaves at most a truncated last line, which scan_for_resume() removes.
//
// One owner appends; the class is not thread-safe.
#pragma once

#include <filesystem>
#include <string_view>

#include "common/status.h"

namespace conveyor {

class JsonlAppender {
 public:
  // Opens (creating, 0644 less the umask) `path` for appending. The parent directory
  // must exist: creating it is the caller's decision.
  static Expected<JsonlAppender> open(const std::filesystem::path& path);

  JsonlAppender(JsonlAppender&& other) noexcept;
  JsonlAppender& operator=(JsonlAppender&& other) noexcept;
  JsonlAppender(const JsonlAppender&) = delete;
  JsonlAppender& operator=(const JsonlAppender&) = delete;
  ~JsonlAppender();

  // Writes `line`, which must end in '\n' and hold no other '\n' (kInvalidArgument
  // otherwise, nothing written). Retries partial writes and EINTR. When a write fails
  // after part of the line went out, the part is cut off again (ftruncate), so the
  // file stays a sequence of whole lines; if even that fails, every later append
  // fails too, rather than glue a line onto the fragment.
  Status append(std::string_view line);

  // fdatasync: what was appended survives a power loss.
  Status sync();

  // Closes the file now, reporting what close() reports (NFS defers write errors
  // to it). Later calls fail.
  Status close();

  const std::filesystem::path& path() const { return path_; }

 private:
  JsonlAppender(int fd, std::filesystem::path path) : fd_(fd), path_(std::move(path)) {}

  Status io_error(const char* what, int error) const;
  // Removes the `written` bytes of a failed append from the end of the file.
  bool cut_fragment(std::size_t written);

  int fd_ = -1;
  std::filesystem::path path_;
  bool broken_ = false;  // a fragment of a line could not be removed
};

}  // namespace conveyor
