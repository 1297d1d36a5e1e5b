// Resuming a batch job: which custom_ids already have a line in the output or error
// file, so that a rerun generates only the rest. Run before the files are opened for
// appending.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <unordered_set>

#include "common/status.h"

namespace conveyor {

struct ResumeState {
  std::unordered_set<std::string> finished;  // custom_ids with a line in either file
  std::int64_t results = 0;                  // distinct custom_ids finished in the output file
  std::int64_t errors = 0;                   // ... and in the error file, not already counted
  std::int64_t repaired_bytes = 0;           // bytes of truncated last lines removed
};

// A line longer than this is not one Conveyor wrote (and is not loaded to find out).
inline constexpr std::size_t kMaxResumeLineBytes = std::size_t{1} << 30;

// Reads both files (a missing file is empty) a block at a time. Every complete line
// must be an output line: a JSON object with a string "custom_id" and a "response" or
// "error" member; otherwise the file is not a Conveyor output file (an input file
// given as the output, say) and the answer is kMalformed naming the file and line,
// so that nothing is appended to it. A last line without its '\n' is a write cut
// short by a kill: the file is truncated to its last complete line (and synced), and
// that request counts as not finished. The fragment must look like the start of a
// line ('{') or be NUL bytes (what a crash can leave after a size update); anything
// else is refused like a bad line, since cutting it could destroy someone's data.
// kIo when a file cannot be read or truncated.
Expected<ResumeState> scan_for_resume(const std::filesystem::path& output,
                                      const std::filesystem::path& errors);

}  // namespace conveyor
