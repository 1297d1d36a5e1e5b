// How much backend memory a stage's weights may take: a byte count or a share of the
// stage's own weights. Layers beyond it are streamed in (worker/weight_store.h).
#pragma once

#include <cstdint>

namespace conveyor {

struct WeightBudget {
  std::uint64_t bytes = 0;  // 0: no byte limit
  double fraction = 0;      // of the stage's weights, as the backend holds them; 0: none

  // Every weight resident, as without a budget.
  bool unlimited() const { return bytes == 0 && (fraction <= 0 || fraction >= 1); }
};

}  // namespace conveyor
