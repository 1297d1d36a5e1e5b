// ResultStream: one job's terminal lines, in the order they finished, in an
// append-only file beside the journal: what producers fetch by offset (a producer
// that reconnects, or a coordinator restarted, continues from where it was). Each
// record is one line, 'R' (an output line) or 'E' (an error line) and the JSON line
// itself; a record goes out in one write and is synced before the journal marks the
// request done, so the file is the authority on what finished. A line cut by a crash
// is removed when the file is opened again.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "coordinator/producer/job_service.h"

namespace conveyor {

struct ResultStreamContents {
  std::vector<std::string> custom_ids;  // of every record, in order
  std::int64_t errors = 0;
  std::uint64_t repaired_bytes = 0;  // a cut last line removed
};

class ResultStream {
 public:
  // Opens or creates `file`, reading back what it holds into `contents`.
  static Expected<std::unique_ptr<ResultStream>> open(const std::filesystem::path& file,
                                                      ResultStreamContents* contents);
  ~ResultStream();
  ResultStream(const ResultStream&) = delete;
  ResultStream& operator=(const ResultStream&) = delete;

  Status append(const ResultRecord& record);
  Status sync();
  std::uint64_t size() const { return offsets_.size(); }
  // Records [offset, offset + max) that exist.
  Expected<std::vector<ResultRecord>> read(std::uint64_t offset, std::size_t max) const;
  // Closes and deletes the file (the job was released).
  void remove();

 private:
  ResultStream(std::filesystem::path file, int fd);

  std::filesystem::path file_;
  int fd_ = -1;
  std::vector<std::uint64_t> offsets_;  // byte offset of each record
  std::uint64_t end_ = 0;
};

// The custom_id of an output or error line; empty when it has none.
std::string custom_id_of(const std::string& line);

}  // namespace conveyor
