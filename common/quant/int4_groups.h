// Weight-only int4, asymmetric, group-wise along k: the kQ4_G128 format (groups of 128,
// W4A16) and GGUF's Q4_1 (groups of 32, the same scheme in smaller blocks: for a k that
// is no multiple of 128, such as SmolLM2's 576).
#pragma once

#include <cstdint>
#include <span>

#include "common/dtype.h"
#include "common/quant/quantized_tensor.h"

namespace conveyor::quant {

inline constexpr std::int64_t kInt4Group = 128;  // values per kQ4_G128 block

// Quantises W f32 [n, k] (row-major) into `type` (kQ4_G128 or kQ4_1), each group of
// consecutive k values on its own: m = its minimum rounded to f16, d = (max - m) / 15
// rounded to f16 (one f16 step up where rounding went below, so that m + 15 d covers
// the maximum), q = round((w - m) / d) to nearest even, clamped to 0..15; a group whose
// d is 0 (all values equal) gets q = 0. |w - (q * d + m)| <= max(d / 2, |m - min|),
// the second term being the f16 rounding of the minimum (up to the rounding of f32
// arithmetic). Throws Error(kInvalidArgument) for another type, a size that is not
// n * k, a k that is not a whole number of groups, a non-finite value, or a group whose
// range overflows f16.
QuantizedTensor quantize_int4_groups(DType type, std::span<const float> w, std::int64_t n,
                                     std::int64_t k);

}  // namespace conveyor::quant
