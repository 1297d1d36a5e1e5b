// The kS24_F16 block (common/dtype.h): 2:4 structured-sparse weights, as sparse tensor
// cores and cuSPARSELt keep them, in self-contained blocks of 16 k values (18 bytes):
//
//   f16 kept[8]  the kept values, two per group of 4, in k order (group g: 2g, 2g + 1)
//   u16 meta     bits [4g, 4g + 4) for group g (0..3): its two positions within the
//                group, p0 in the low two bits, p1 in the high two, p0 < p1
//
// Value 4g + p0 is kept[2g], 4g + p1 is kept[2g + 1], the other two of the group are
// zero. A group with fewer than two nonzeros still names two positions (zeros among
// them), so every group has the same shape and a kernel needs no branches. Positions
// that are not ascending make a block malformed (s24_first_bad_block()): a kernel
// that skips the zeros would then disagree with the dense weight.
#pragma once

#include <cstdint>
#include <optional>

namespace conveyor {

inline constexpr std::int64_t kS24Block = 16;       // values per block
inline constexpr std::int64_t kS24BlockBytes = 18;  // 8 f16 + u16
inline constexpr std::int64_t kS24MetaOffset = 16;  // where the u16 sits in a block

// The positions p0 (first) and p1 (second) of group g (0..3) in a block's metadata.
inline int s24_position(std::uint16_t meta, int group, int which) {
  return (meta >> (4 * group + 2 * which)) & 3;
}

// The metadata nibble of a group keeping positions p0 < p1.
inline std::uint16_t s24_group_meta(int p0, int p1, int group) {
  return static_cast<std::uint16_t>((p0 | (p1 << 2)) << (4 * group));
}

inline std::uint16_t s24_block_meta(const std::uint8_t* block) {
  return static_cast<std::uint16_t>(block[kS24MetaOffset] | (block[kS24MetaOffset + 1] << 8));
}

// Whether every group of the metadata names two distinct positions in ascending order.
bool s24_meta_valid(std::uint16_t meta);

// The first of `blocks` consecutive blocks whose metadata is not valid, or nullopt.
std::optional<std::int64_t> s24_first_bad_block(const std::uint8_t* blocks, std::int64_t count);

}  // namespace conveyor
