// 2:4 sparse weights (kS24_F16, common/sparse24.h) repacked into 16-row panels for the
// sparse GEMM (cpu_sparse24_gemm.h): only the kept half of the values, widened to f32
// once at upload, and their positions, laid out so that one step of a kernel reads the
// same group of 4 k values for a panel's 16 output rows with unit-stride vector loads.
//
// Layout: panel p (rows 16p .. 16p + 15, row r in lane r - 16p) holds k / 16 chunks in
// k order, one per stored block, each 576 bytes:
//   u32 index[16]      per lane, nibble 2g + s (bits [8g + 4s, 8g + 4s + 4)): where in
//                      the chunk the s-th kept value of group g sits, 4g + its position
//   f32 kept[8][16]    kept[2g + s][lane]: the lane's s-th kept value of group g
// The index is the stored metadata with each group's number added, so that a kernel
// gets the lane of x to permute with one shift (a permute of L lanes reads the index
// modulo L, which is (4g mod L) + position: the place within the L x values it loaded).
// 2.25 bytes per weight against gemm_f32's 4. Rows past n in the last panel are zero
// (values and indices), so they contribute nothing.
#pragma once

#include <cstdint>

namespace conveyor::cpu {

inline constexpr std::int64_t kS24ChunkValues = 16;      // k values per chunk
inline constexpr std::int64_t kS24ChunkKeptOffset = 64;  // bytes of index[16] before kept
inline constexpr std::int64_t kS24ChunkBytes = kS24ChunkKeptOffset + 8 * 16 * 4;

// Bytes of one panel (16 rows of k columns) and of a whole [n, k] weight; k must be a
// multiple of 16.
inline std::int64_t s24_panel_bytes(std::int64_t k) {
  return k / kS24ChunkValues * kS24ChunkBytes;
}
std::int64_t s24_packed_bytes(std::int64_t n, std::int64_t k);

// Repacks rows [row_begin, row_end) of a stored kS24_F16 [n, k] weight (src: their
// blocks, row after row, metadata already checked with s24_first_bad_block()) into their
// places in `packed`. Padding rows of the last panel must already be zero.
void pack_s24_rows(const std::uint8_t* src, std::int64_t row_begin, std::int64_t row_end,
                   std::int64_t k, std::uint8_t* packed);

// Row `row` of a packed weight as f32 [k], equal to dequantize_row() of the source.
void unpack_s24_row(const std::uint8_t* packed, std::int64_t row, std::int64_t k, float* out);

}  // namespace conveyor::cpu
