#include "common/fp8.h"

#include <bit>
#include <cmath>
#include <limits>

namespace conveyor {

float fp8_e4m3_to_fp32(std::uint8_t code) {
  const std::uint32_t sign = static_cast<std::uint32_t>(code & 0x80u) << 24;
  const std::uint32_t magnitude = code & 0x7Fu;
  if (magnitude == kFp8E4M3NaN) {
    return std::bit_cast<float>(
        sign | std::bit_cast<std::uint32_t>(std::numeric_limits<float>::quiet_NaN()));
  }
  // The code's exponent and mantissa placed in an f32's (exponent field 0..15, top three
  // mantissa bits) give 2^(e-127) * (1 + m/8), or for e = 0 the f32 subnormal m/8 *
  // 2^-126; times 2^120 (exact) that is 2^(e-7) * (1 + m/8), or m * 2^-9.
  const float unbiased = std::bit_cast<float>(magnitude << 20) * 0x1p120f;
  return std::bit_cast<float>(sign | std::bit_cast<std::uint32_t>(unbiased));
}

std::uint8_t fp32_to_fp8_e4m3(float value) {
  const std::uint32_t sign = (std::bit_cast<std::uint32_t>(value) >> 24) & 0x80u;
  const float magnitude = std::fabs(value);
  std::uint32_t code = 0;
  if (std::isnan(value)) {
    code = kFp8E4M3NaN;
  } else if (magnitude >= kFp8E4M3Max) {
    code = kFp8E4M3MaxCode;  // saturate, infinities too
  } else if (magnitude < 0x1p-6f) {
    // Subnormal range, quantum 2^-9: the value in quanta, rounded to an integer by
    // adding 2^23 (round to nearest even, the FPU's mode). 8 quanta is 2^-6, whose code
    // (exponent 1, mantissa 0) is 8 too.
    const float quanta = magnitude * 0x1p9f;
    code = static_cast<std::uint32_t>((quanta + 0x1p23f) - 0x1p23f);
  } else {
    // Normal: round the f32 mantissa to 3 bits, ties to even; a carry moves into the
    // exponent, as it should. Then rebias the exponent from 127 to 7 (120 << 3 in the
    // code's units). Below 448 nothing rounds past 448 (the next value up, 480, is
    // where the NaN code would be).
    const std::uint32_t bits = std::bit_cast<std::uint32_t>(magnitude);
    const std::uint32_t rounded = bits + 0x7FFFFu + ((bits >> 20) & 1u);
    code = (rounded >> 20) - (120u << 3);
  }
  return static_cast<std::uint8_t>(sign | code);
}

}  // namespace conveyor
