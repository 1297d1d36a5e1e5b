#include "coordinator/stage_planner.h"

#include <string>

#include "common/status.h"

namespace conveyor {

std::vector<LayerRange> split_layers(std::int64_t num_layers, std::int64_t stages) {
  if (stages < 1 || stages > num_layers) {
    fail(ErrorCode::kInvalidArgument, "cannot split " + std::to_string(num_layers) +
                                          " layers into " + std::to_string(stages) + " stages");
  }
  std::vector<LayerRange> ranges;
  std::int64_t begin = 0;
  for (std::int64_t s = 0; s < stages; ++s) {
    const std::int64_t size = num_layers / stages + (s < num_layers % stages ? 1 : 0);
    ranges.push_back({begin, begin + size});
    begin += size;
  }
  return ranges;
}

}  // namespace conveyor
