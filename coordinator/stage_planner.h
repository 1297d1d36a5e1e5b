// Stage planning: which contiguous layer range each pipeline stage holds.
#pragma once

#include <cstdint>
#include <vector>

#include "worker/model_weights.h"

namespace conveyor {

// Splits `num_layers` into `stages` contiguous ranges whose sizes differ by at most
// one, the larger ones first (the last stage also carries the output head).
// Throws Error(kInvalidArgument) when stages < 1 or stages > num_layers.
std::vector<LayerRange> split_layers(std::int64_t num_layers, std::int64_t stages);

}  // namespace conveyor
