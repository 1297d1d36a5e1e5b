#include "common/dequantize.h"

#include <bit>
#include <cstring>
#include <string>

#include "common/fp8.h"
#include "common/sparse24.h"
#include "common/status.h"

// Bit-exactness and FMA: ggml computes `d * q + m` (Q4_1, Q4_K) as a rounded product
// and a rounded sum. Each product that is followed by a sum is exact in f32 (an f16
// scale has 11 significant bits; a 6-bit sub-scale and a 4-bit quant add at most 10),
// so a compiler that fuses them into one FMA (-march with FMA, -ffp-contract=fast)
// still gives the same bits. Keep that true for any type added here, or build this
// file with -ffp-contract=off. (Q4_G128 is Q4_1's `q * d + m`; Q8_R's and F8_R's
// products are not followed by a sum; S24_F16 has no arithmetic.)

namespace conveyor {
namespace {

constexpr int kQK = 32;    // elements per Q8_0 / Q4_0 / Q4_1 block
constexpr int kQKK = 256;  // elements per K-quant super-block

std::uint16_t load_u16(const std::uint8_t* p) {
  // Little-endian, unaligned: block structs are packed and may start anywhere.
  return static_cast<std::uint16_t>(p[0] | (p[1] << 8));
}

inline float half_to_float(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t magnitude = h & 0x7FFFu;
  const std::uint32_t exponent = magnitude & 0x7C00u;
  // Normal: move exponent and mantissa into place and rebias the exponent 15 -> 127.
  const std::uint32_t normal = (magnitude << 13) + (112u << 23);
  // Inf/NaN: exponent all ones, mantissa (NaN payload) kept.
  const std::uint32_t inf_nan = (magnitude << 13) | 0x7F800000u;
  // Subnormal: mantissa * 2^-24, exact in binary32 (which has the range for it).
  const std::uint32_t subnormal =
      std::bit_cast<std::uint32_t>(static_cast<float>(magnitude) * 0x1p-24f);
  const std::uint32_t bits = exponent == 0x7C00u ? inf_nan : (exponent == 0 ? subnormal : normal);
  return std::bit_cast<float>(sign | bits);
}

void dequantize_f32(const std::uint8_t* src, float* dst, std::int64_t n) {
  std::memcpy(dst, src, static_cast<std::size_t>(n) * sizeof(float));
}

void dequantize_f16(const std::uint8_t* src, float* dst, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) {
    dst[i] = half_to_float(load_u16(src + 2 * i));
  }
}

void dequantize_bf16(const std::uint8_t* src, float* dst, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) {
    dst[i] = std::bit_cast<float>(static_cast<std::uint32_t>(load_u16(src + 2 * i)) << 16);
  }
}

// block_q8_0 { f16 d; int8 qs[32]; }: y = qs * d
void dequantize_q8_0(const std::uint8_t* src, float* dst, std::int64_t blocks) {
  for (std::int64_t b = 0; b < blocks; ++b, src += 34, dst += kQK) {
    const float d = half_to_float(load_u16(src));
    const std::uint8_t* qs = src + 2;
    for (int j = 0; j < kQK; ++j) {
      dst[j] = static_cast<float>(static_cast<std::int8_t>(qs[j])) * d;
    }
  }
}

// block_q4_0 { f16 d; u8 qs[16]; }: low nibbles are elements 0..15, high 16..31;
// y = (nibble - 8) * d
void dequantize_q4_0(const std::uint8_t* src, float* dst, std::int64_t blocks) {
  for (std::int64_t b = 0; b < blocks; ++b, src += 18, dst += kQK) {
    const float d = half_to_float(load_u16(src));
    const std::uint8_t* qs = src + 2;
    for (int j = 0; j < kQK / 2; ++j) {
      const int x0 = (qs[j] & 0x0F) - 8;
      const int x1 = (qs[j] >> 4) - 8;
      dst[j] = static_cast<float>(x0) * d;
      dst[j + kQK / 2] = static_cast<float>(x1) * d;
    }
  }
}

// block_q4_1 { f16 d; f16 m; u8 qs[16]; }: y = nibble * d + m
void dequantize_q4_1(const std::uint8_t* src, float* dst, std::int64_t blocks) {
  for (std::int64_t b = 0; b < blocks; ++b, src += 20, dst += kQK) {
    const float d = half_to_float(load_u16(src));
    const float m = half_to_float(load_u16(src + 2));
    const std::uint8_t* qs = src + 4;
    for (int j = 0; j < kQK / 2; ++j) {
      const int x0 = qs[j] & 0x0F;
      const int x1 = qs[j] >> 4;
      dst[j] = static_cast<float>(x0) * d + m;
      dst[j + kQK / 2] = static_cast<float>(x1) * d + m;
    }
  }
}

// block_q4_g128 { f16 d; f16 m; u8 qs[64]; }: four runs of 16 bytes, run r holding
// elements 32r + j (low nibble) and 32r + j + 16 (high), as Q4_1's block does;
// y = nibble * d + m
void dequantize_q4_g128(const std::uint8_t* src, float* dst, std::int64_t blocks) {
  for (std::int64_t b = 0; b < blocks; ++b, src += 68) {
    const float d = half_to_float(load_u16(src));
    const float m = half_to_float(load_u16(src + 2));
    for (int run = 0; run < 4; ++run, dst += kQK) {
      const std::uint8_t* qs = src + 4 + 16 * run;
      for (int j = 0; j < kQK / 2; ++j) {
        const int x0 = qs[j] & 0x0F;
        const int x1 = qs[j] >> 4;
        dst[j] = static_cast<float>(x0) * d + m;
        dst[j + kQK / 2] = static_cast<float>(x1) * d + m;
      }
    }
  }
}

// int8 q[n] of one row, y = q * d (d: the row's f16 scale, as f32)
void dequantize_q8_r(const std::uint8_t* src, float* dst, std::int64_t n, float d) {
  for (std::int64_t i = 0; i < n; ++i) {
    dst[i] = static_cast<float>(static_cast<std::int8_t>(src[i])) * d;
  }
}

// E4M3 codes q[n] of one row, y = e4m3(q) * s (s: the row's f32 scale)
void dequantize_f8_r(const std::uint8_t* src, float* dst, std::int64_t n, float s) {
  for (std::int64_t i = 0; i < n; ++i) {
    dst[i] = fp8_e4m3_to_fp32(src[i]) * s;
  }
}

// block_s24_f16 { f16 kept[8]; u16 meta; } (common/sparse24.h): each group of 4 gets
// its two kept values at their positions, zeros elsewhere. Positions that are not
// ascending are malformed; here the second value wins where they coincide.
void dequantize_s24_f16(const std::uint8_t* src, float* dst, std::int64_t blocks) {
  for (std::int64_t b = 0; b < blocks; ++b, src += kS24BlockBytes, dst += kS24Block) {
    const std::uint16_t meta = s24_block_meta(src);
    for (int g = 0; g < 4; ++g) {
      float* group = dst + 4 * g;
      group[0] = group[1] = group[2] = group[3] = 0.0f;
      group[s24_position(meta, g, 0)] = half_to_float(load_u16(src + 4 * g));
      group[s24_position(meta, g, 1)] = half_to_float(load_u16(src + 4 * g + 2));
    }
  }
}

// The 6-bit scale and min of sub-block j (0..7) from Q4_K's 12 packed bytes
// (ggml's get_scale_min_k4).
inline void scale_min_k4(int j, const std::uint8_t* q, std::uint8_t* scale, std::uint8_t* min) {
  if (j < 4) {
    *scale = q[j] & 63;
    *min = q[j + 4] & 63;
  } else {
    *scale = static_cast<std::uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    *min = static_cast<std::uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

// block_q4_K { f16 d; f16 dmin; u8 scales[12]; u8 qs[128]; }: eight sub-blocks of 32,
// y = (d * scale) * nibble - (dmin * min)
void dequantize_q4_k(const std::uint8_t* src, float* dst, std::int64_t blocks) {
  for (std::int64_t b = 0; b < blocks; ++b, src += 144) {
    const float d = half_to_float(load_u16(src));
    const float dmin = half_to_float(load_u16(src + 2));
    const std::uint8_t* scales = src + 4;
    const std::uint8_t* q = src + 16;
    for (int j = 0, is = 0; j < kQKK; j += 64, is += 2, q += 32) {
      std::uint8_t sc = 0;
      std::uint8_t mn = 0;
      scale_min_k4(is, scales, &sc, &mn);
      const float d1 = d * static_cast<float>(sc);
      const float m1 = dmin * static_cast<float>(mn);
      scale_min_k4(is + 1, scales, &sc, &mn);
      const float d2 = d * static_cast<float>(sc);
      const float m2 = dmin * static_cast<float>(mn);
      for (int l = 0; l < 32; ++l) {
        *dst++ = d1 * static_cast<float>(q[l] & 0xF) - m1;
      }
      for (int l = 0; l < 32; ++l) {
        *dst++ = d2 * static_cast<float>(q[l] >> 4) - m2;
      }
    }
  }
}

// block_q6_K { u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d; }: 6-bit values from a
// low nibble and two high bits, y = (d * scale) * (q - 32)
void dequantize_q6_k(const std::uint8_t* src, float* dst, std::int64_t blocks) {
  for (std::int64_t b = 0; b < blocks; ++b, src += 210) {
    const float d = half_to_float(load_u16(src + 208));
    const std::uint8_t* ql = src;
    const std::uint8_t* qh = src + 128;
    const std::uint8_t* sc_bytes = src + 192;
    for (int n = 0; n < kQKK; n += 128, dst += 128, ql += 64, qh += 32, sc_bytes += 8) {
      float ds[8];
      for (int k = 0; k < 8; ++k) {
        ds[k] = d * static_cast<float>(static_cast<std::int8_t>(sc_bytes[k]));
      }
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        dst[l] = ds[is + 0] * static_cast<float>(q1);
        dst[l + 32] = ds[is + 2] * static_cast<float>(q2);
        dst[l + 64] = ds[is + 4] * static_cast<float>(q3);
        dst[l + 96] = ds[is + 6] * static_cast<float>(q4);
      }
    }
  }
}

}  // namespace

float fp16_to_fp32(std::uint16_t h) {
  return half_to_float(h);
}

float bf16_to_fp32(std::uint16_t h) {
  return std::bit_cast<float>(static_cast<std::uint32_t>(h) << 16);
}

void dequantize_row(DType type, const std::uint8_t* src, float* dst, std::int64_t n) {
  if (dtype_is_row_scaled(type)) {
    fail(ErrorCode::kInvalidArgument,
         "dequantize_row: " + std::string(dtype_name(type)) + " values need their row's scale");
  }
  dequantize_row(type, src, dst, n, 1.0f);
}

void dequantize_row(DType type, const std::uint8_t* src, float* dst, std::int64_t n,
                    float row_scale) {
  const DTypeLayout layout = dtype_layout(type);
  if (n < 0 || n % layout.block_elements != 0) {
    fail(ErrorCode::kInvalidArgument,
         "dequantize_row: " + std::to_string(n) + " elements is not a whole number of " +
             std::string(dtype_name(type)) + " blocks of " + std::to_string(layout.block_elements));
  }
  const std::int64_t blocks = n / layout.block_elements;
  switch (type) {
    case DType::kF32:
      return dequantize_f32(src, dst, n);
    case DType::kF16:
      return dequantize_f16(src, dst, n);
    case DType::kBF16:
      return dequantize_bf16(src, dst, n);
    case DType::kQ8_0:
      return dequantize_q8_0(src, dst, blocks);
    case DType::kQ4_0:
      return dequantize_q4_0(src, dst, blocks);
    case DType::kQ4_1:
      return dequantize_q4_1(src, dst, blocks);
    case DType::kQ4_K:
      return dequantize_q4_k(src, dst, blocks);
    case DType::kQ6_K:
      return dequantize_q6_k(src, dst, blocks);
    case DType::kQ4_G128:
      return dequantize_q4_g128(src, dst, blocks);
    case DType::kQ8_R:
      return dequantize_q8_r(src, dst, n, row_scale);
    case DType::kF8_R:
      return dequantize_f8_r(src, dst, n, row_scale);
    case DType::kS24_F16:
      return dequantize_s24_f16(src, dst, blocks);
  }
  fail(ErrorCode::kInternal, "dequantize_row: unknown dtype");
}

float tensor_row_scale(const TensorRef& tensor, std::int64_t row) {
  const std::uint8_t* p =
      tensor.scales.data() + static_cast<std::size_t>(row) * dtype_row_scale_bytes(tensor.dtype);
  switch (dtype_row_scale_bytes(tensor.dtype)) {
    case 2:
      return half_to_float(load_u16(p));
    case 4: {
      const std::uint32_t bits = static_cast<std::uint32_t>(load_u16(p)) |
                                 (static_cast<std::uint32_t>(load_u16(p + 2)) << 16);
      return std::bit_cast<float>(bits);
    }
    default:
      return 1.0f;
  }
}

bool row_scales_match(const TensorRef& tensor) {
  const std::uint64_t per_row = dtype_row_scale_bytes(tensor.dtype);
  std::uint64_t expected = 0;
  if (tensor.scale_rows() < 0 ||
      __builtin_mul_overflow(static_cast<std::uint64_t>(tensor.scale_rows()), per_row, &expected)) {
    return false;
  }
  return tensor.scales.size() == expected;
}

void dequantize_tensor(const TensorRef& tensor, std::span<float> out) {
  const std::int64_t elements = tensor.elements();
  const std::int64_t row = tensor.shape.empty() ? 1 : tensor.shape.back();
  const DTypeLayout layout = dtype_layout(tensor.dtype);
  if (row <= 0 || row % layout.block_elements != 0) {
    fail(ErrorCode::kInvalidArgument, "tensor " + tensor.name + ": row length " +
                                          std::to_string(row) + " is not a whole number of " +
                                          std::string(dtype_name(tensor.dtype)) + " blocks");
  }
  const auto bytes = dtype_bytes(tensor.dtype, static_cast<std::uint64_t>(elements));
  if (!bytes || *bytes != tensor.bytes.size()) {
    fail(ErrorCode::kInvalidArgument, "tensor " + tensor.name + ": " +
                                          std::to_string(tensor.bytes.size()) +
                                          " bytes do not match its shape and dtype");
  }
  if (out.size() != static_cast<std::size_t>(elements)) {
    fail(ErrorCode::kInvalidArgument, "tensor " + tensor.name + ": output holds " +
                                          std::to_string(out.size()) + " floats, need " +
                                          std::to_string(elements));
  }
  if (!row_scales_match(tensor)) {
    fail(ErrorCode::kInvalidArgument, "tensor " + tensor.name + ": " +
                                          std::to_string(tensor.scales.size()) +
                                          " bytes of row scales do not match its shape and " +
                                          std::string(dtype_name(tensor.dtype)));
  }
  if (dtype_is_row_scaled(tensor.dtype)) {
    // One value per byte, each row under its own scale.
    for (std::int64_t r = 0; r < tensor.scale_rows(); ++r) {
      dequantize_row(tensor.dtype, tensor.bytes.data() + r * row, out.data() + r * row, row,
                     tensor_row_scale(tensor, r));
    }
    return;
  }
  // Rows are contiguous and blocks never straddle them, so one pass over the
  // whole tensor equals converting row by row.
  dequantize_row(tensor.dtype, tensor.bytes.data(), out.data(), elements);
}

std::vector<float> dequantize_tensor(const TensorRef& tensor) {
  std::vector<float> out(static_cast<std::size_t>(tensor.elements()));
  dequantize_tensor(tensor, out);
  return out;
}

}  // namespace conveyor
