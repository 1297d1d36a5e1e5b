// Element types of stored tensors: plain floats, GGUF's block-quantised types, and the
// formats `conveyor compress` writes. A block type packs `block_elements` values into
// `block_bytes` bytes. A row-scaled type stores one value per byte and keeps one scale
// per row beside them (TensorRef::scales), so its blocks are single values and
// dtype_bytes() counts the values only.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace conveyor {

enum class DType : std::uint8_t {
  kF32,
  kF16,
  kBF16,
  kQ8_0,
  kQ4_0,
  kQ4_1,
  kQ4_K,
  kQ6_K,
  // Written by the quantisers (common/quant/). Their scales are f16 where the quants are
  // integers: q * d is then exact in f32 (at most 8 + 11 significant bits), so every
  // rewriting of the dequantisation, fused or not, gives the same floats, and a GEMM
  // from the quants can match gemm_f32 on the dequantised weight bit for bit.
  kQ4_G128,  // blocks of 128: f16 d, f16 m, 64 bytes of nibbles; q * d + m, q in 0..15
  kQ8_R,     // int8 q [rows, k], f16 d per row beside them: q * d (W8A16)
  kF8_R,     // FP8 E4M3 codes [rows, k], f32 s per row beside them: e4m3(q) * s (W8A8)
  // 2:4 structured-sparse f16 (common/sparse24.h): blocks of 16 k values, the 8 kept
  // (2 of every 4) as f16 in k order, then a u16 of their positions; zeros elsewhere.
  kS24_F16,
};

struct DTypeLayout {
  std::uint32_t block_elements;  // values per block (1 for plain types)
  std::uint32_t block_bytes;     // bytes per block
};

DTypeLayout dtype_layout(DType type);
std::string_view dtype_name(DType type);  // "f32", "q4_k", ...
std::optional<DType> dtype_from_name(std::string_view name);
bool dtype_is_quantized(DType type);
// Bytes of one row's scale in TensorRef::scales: 2 (f16) for kQ8_R, 4 (f32) for kF8_R,
// 0 for every type that needs none.
std::uint32_t dtype_row_scale_bytes(DType type);
inline bool dtype_is_row_scaled(DType type) {
  return dtype_row_scale_bytes(type) != 0;
}

// Bytes needed for `elements` values of `type`, or nullopt when `elements` is not a
// whole number of blocks or the product overflows.
std::optional<std::uint64_t> dtype_bytes(DType type, std::uint64_t elements);

}  // namespace conveyor
