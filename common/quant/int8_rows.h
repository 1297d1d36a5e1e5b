// Weight-only int8 with one scale per output row (per output channel): the kQ8_R
// format, for W8A16 GEMMs.
#pragma once

#include <cstdint>
#include <span>

#include "common/quant/quantized_tensor.h"

namespace conveyor::quant {

// Quantises W f32 [n, k] row by row: d = max|w| / 127 rounded to f16 (one f16 step up
// where rounding went below, so that no value needs more than 127 steps), q =
// round(w / d) to nearest even, clamped to -127..127. |w - q * d| <= d / 2 for every
// value (up to the rounding of w / d in f32). A row of zeros gets d = 0. Throws
// Error(kInvalidArgument) for a size that is not n * k, a non-finite value, or a row
// whose scale overflows f16 (max|w| beyond about 8.3e6).
QuantizedTensor quantize_int8_rows(std::span<const float> w, std::int64_t n, std::int64_t k);

}  // namespace conveyor::quant
