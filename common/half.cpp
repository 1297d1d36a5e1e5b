#include "common/half.h"

#include <bit>

namespace conveyor {

// F. Giesen's float_to_half_fast3_rtne, with NaN kept.
std::uint16_t fp32_to_fp16(float value) {
  std::uint32_t bits = std::bit_cast<std::uint32_t>(value);
  const std::uint32_t sign = (bits >> 16) & 0x8000u;
  bits &= 0x7FFFFFFFu;
  if (bits > 0x7F800000u) return static_cast<std::uint16_t>(sign | 0x7E00u);    // NaN
  if (bits >= (143u << 23)) return static_cast<std::uint16_t>(sign | 0x7C00u);  // >= 65536
  if (bits < (113u << 23)) {
    // Below f16's smallest normal: adding 0.5f leaves round(|x| * 2^24) in the low
    // mantissa bits, rounded by the FPU (to nearest even).
    const float magic = std::bit_cast<float>(126u << 23);
    return static_cast<std::uint16_t>(
        sign | (std::bit_cast<std::uint32_t>(std::bit_cast<float>(bits) + magic) - (126u << 23)));
  }
  const std::uint32_t odd = (bits >> 13) & 1u;
  bits += (static_cast<std::uint32_t>(15 - 127) << 23) + 0xFFFu + odd;  // rebias, round
  return static_cast<std::uint16_t>(sign | (bits >> 13));
}

}  // namespace conveyor
