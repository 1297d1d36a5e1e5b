// Argument checks the quantisers, the scale search and the pruning masks share.
#pragma once

#include <cstdint>
#include <span>

namespace conveyor::quant {

// Throws Error(kInvalidArgument) naming `what` unless n > 0, k > 0, values holds n * k
// floats and every one of them is finite.
void check_matrix(std::span<const float> values, std::int64_t n, std::int64_t k, const char* what);

// Throws Error(kInvalidArgument) naming `what` unless values holds k floats, each
// finite and >= 0 (activation statistics per input channel).
void check_channel_stats(std::span<const float> values, std::int64_t k, const char* what);

}  // namespace conveyor::quant
