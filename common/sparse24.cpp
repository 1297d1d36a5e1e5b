#include "common/sparse24.h"

namespace conveyor {

bool s24_meta_valid(std::uint16_t meta) {
  for (int g = 0; g < 4; ++g) {
    if (s24_position(meta, g, 0) >= s24_position(meta, g, 1)) return false;
  }
  return true;
}

std::optional<std::int64_t> s24_first_bad_block(const std::uint8_t* blocks, std::int64_t count) {
  for (std::int64_t b = 0; b < count; ++b) {
    if (!s24_meta_valid(s24_block_meta(blocks + b * kS24BlockBytes))) return b;
  }
  return std::nullopt;
}

}  // namespace conveyor
