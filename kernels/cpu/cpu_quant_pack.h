// GGUF block-quantised weights repacked into 16-row panels for the quantised GEMM
// (cpu_quant_gemm.h): the integer quants stay at 4 or 8 bits, the per-block scales are
// decoded once to f32, and everything one k step needs for a panel's 16 output rows is
// contiguous, so a kernel turns it into f32 with vector shifts, a convert and one
// multiply-add.
//
// Three panel formats cover the five GGUF types and two of Conveyor's own:
//   kNibble:       groups of 32 k values; value = q * scale + min, q in 0..15.
//                  Q4_1 (scale = d, min = m), Q4_K (scale = d * sc, min = -(dmin * mn)),
//                  Q4_G128 (each block's d and m repeated over its four groups of 32).
//   kSignedNibble: groups of 32 k values; value = (q - 8) * scale, q in 0..15. Q4_0
//                  (as q * d + (-8 * d) it would give +0 where dequantize_row gives -0).
//   kInt8:         groups of 16 k values; value = q * scale, q in -128..127.
//                  Q8_0 (scale = d), Q6_K (scale = d * sc, q = 6-bit value - 32),
//                  Q8_R (scale = the row's d, repeated over every group).
// Each rewriting gives the very floats dequantize_row() computes: the products q * d
// are exact in f32, so the single rounding of the sum (or of the product alone) is the
// same whichever way round it is written, fused into an FMA or not.
//
// Layout of one group of one panel (16 rows, row r of the panel in lane r): f32
// scale[16], then for kNibble f32 min[16], then the quants as u32 words q[w][16]: word
// q[w][r] holds row r at k = w * S + t in bits [b*t, b*t + b), b = 4 bits and S = 8
// steps per word for the nibble formats, b = 8 and S = 4 for kInt8. A kernel widens a
// step for 16 rows with 32-bit shifts, a convert and one multiply-add.
//   kNibble: 64 + 64 + 256 = 384 bytes; kSignedNibble, kInt8: 64 + 256 = 320 bytes.
// Panel p holds its k / group groups in order; panels follow each other. Rows past n
// in the last panel are zero (scale, min and quants), so they dequantise to 0.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "common/dtype.h"
#include "kernels/cpu/cpu_gemm.h"

namespace conveyor::cpu {

enum class QuantFormat { kNibble, kSignedNibble, kInt8 };

struct QuantFormatLayout {
  std::int64_t group;          // k values per group
  std::int64_t group_bytes;    // bytes of one group of one panel
  std::int64_t quants_offset;  // where the quants start in a group
};

constexpr int quant_steps_per_word(QuantFormat format) {
  return format == QuantFormat::kInt8 ? 4 : 8;
}

// Scales at byte 0 of a group, mins (kNibble only) at byte 64.
constexpr QuantFormatLayout quant_format_layout(QuantFormat format) {
  switch (format) {
    case QuantFormat::kNibble:
      return {32, 384, 128};
    case QuantFormat::kSignedNibble:
      return {32, 320, 64};
    case QuantFormat::kInt8:
      break;
  }
  return {16, 320, 64};
}

// The panel format a stored type repacks into, or nullopt for plain float types.
std::optional<QuantFormat> quant_format_for(DType type);

// Bytes of one panel (16 rows of k columns) and of a whole [n, k] weight; k must be a
// whole number of the type's blocks.
std::int64_t quant_panel_bytes(QuantFormat format, std::int64_t k);
std::int64_t quant_packed_bytes(QuantFormat format, std::int64_t n, std::int64_t k);

// Repacks rows [row_begin, row_end) of a stored [n, k] weight of `type` (src: their
// blocks, row after row) into their places in `packed`. A row-scaled type (Q8_R) takes
// those rows' scales as f32 in `row_scales` [row_end - row_begin] (tensor_row_scale());
// other types ignore it (it may be null). Padding rows of the last panel must already
// be zero.
void pack_quant_rows(DType type, const std::uint8_t* src, const float* row_scales,
                     std::int64_t row_begin, std::int64_t row_end, std::int64_t k,
                     std::uint8_t* packed);

// Row `row` of a packed weight as f32 [k], equal to dequantize_row() of the source.
void unpack_quant_row(QuantFormat format, const std::uint8_t* packed, std::int64_t row,
                      std::int64_t k, float* out);

}  // namespace conveyor::cpu
