// f32 -> f16 rounding: the scales the quantisers store, random f16 weights (the other
// way is fp16_to_fp32 in common/dequantize.h).
#pragma once

#include <cstdint>

namespace conveyor {

// IEEE binary16, round to nearest even, subnormals included; beyond the largest finite
// f16 (65504) it rounds to infinity, and NaN stays NaN.
std::uint16_t fp32_to_fp16(float value);

// The smallest f16 above `h` (a finite, non-negative f16): one unit in the last place
// up; 0x7C00 (infinity) after the largest finite value.
inline std::uint16_t fp16_next_up(std::uint16_t h) {
  return static_cast<std::uint16_t>(h + 1);
}

}  // namespace conveyor
