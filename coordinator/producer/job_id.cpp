#include "coordinator/producer/job_id.h"

#include <string>

namespace conveyor {
namespace {

bool allowed(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == ':' || c == '-';
}

}  // namespace

Status validate_job_id(std::string_view job_id) {
  if (job_id.empty()) return Status(ErrorCode::kInvalidArgument, "job id is empty");
  if (job_id.size() > kMaxJobIdBytes) {
    return Status(ErrorCode::kInvalidArgument,
                  "job id is " + std::to_string(job_id.size()) + " characters long, more than 128");
  }
  for (std::size_t i = 0; i < job_id.size(); ++i) {
    if (!allowed(job_id[i])) {
      return Status(
          ErrorCode::kInvalidArgument,
          "job id has a character outside [A-Za-z0-9._:-] at position " + std::to_string(i));
    }
  }
  return {};
}

}  // namespace conveyor
