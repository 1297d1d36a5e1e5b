// Job ids are chosen by producers, so a retry (or a rerun of the same command) names
// the same job and the coordinator can answer it with the original.
#pragma once

#include <string_view>

#include "common/status.h"

namespace conveyor {

inline constexpr std::size_t kMaxJobIdBytes = 128;

// 1 to 128 characters of [A-Za-z0-9._:-]: safe in file names, logs, metric-free
// labels and URLs without escaping. kInvalidArgument saying what is wrong otherwise.
Status validate_job_id(std::string_view job_id);

}  // namespace conveyor
