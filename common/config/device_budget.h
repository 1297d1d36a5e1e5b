// A weight budget as people type it: a size ("512MiB", see size_parse.h) or a share of
// the model ("50%"); "0" means no budget (every weight resident).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace conveyor {

struct DeviceBudget {
  std::uint64_t bytes = 0;  // 0: no byte limit
  double fraction = 0;      // share of the model in (0, 1]; 0: none
  friend bool operator==(const DeviceBudget&, const DeviceBudget&) = default;
};

// kInvalidArgument for text that is neither a size nor a percentage in (0, 100].
Expected<DeviceBudget> parse_device_budget(std::string_view text);

// "0", "50%", "512MiB" (whole MiB), or the byte count.
std::string device_budget_string(const DeviceBudget& budget);

}  // namespace conveyor
