// FP8 E4M3 as the OCP 8-bit floating point specification defines it (and Hopper's tensor
// cores compute with it): 1 sign bit, 4 exponent bits with bias 7, 3 mantissa bits; no
// infinities, S.1111.111 (0x7F, 0xFF) is NaN, so the largest finite value is 448
// (S.1111.110). Subnormals are m * 2^-9.
#pragma once

#include <cstdint>

namespace conveyor {

inline constexpr float kFp8E4M3Max = 448.0f;
inline constexpr std::uint8_t kFp8E4M3MaxCode = 0x7E;  // +448
inline constexpr std::uint8_t kFp8E4M3NaN = 0x7F;

// Exact: every E4M3 value is an f32. 0x80 is -0; NaN codes give a quiet NaN.
float fp8_e4m3_to_fp32(std::uint8_t code);

// Round to nearest, ties to even, saturating: a finite value beyond +-448 (infinities
// included) becomes +-448, as the saturating conversions of CUDA (__NV_SATFINITE) do;
// NaN becomes NaN (0x7F, with the sign of the input).
std::uint8_t fp32_to_fp8_e4m3(float value);

}  // namespace conveyor
