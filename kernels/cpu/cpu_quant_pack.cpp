#include "kernels/cpu/cpu_quant_pack.h"

#include <cstring>
#include <string>
#include <vector>

#include "common/dequantize.h"
#include "common/status.h"

namespace conveyor::cpu {
namespace {

constexpr std::int64_t kGroupScaleBytes = kPanelWidth * sizeof(float);

float load_half(const std::uint8_t* p) {
  return fp16_to_fp32(static_cast<std::uint16_t>(p[0] | (p[1] << 8)));
}

// One row of a stored weight split into integer quants and per-group f32 scale/min,
// with the formulas of common/dequantize.cpp (see the header for why they agree).
struct RowQuants {
  std::vector<std::int8_t> q;  // [k]
  std::vector<float> scale;    // [k / group]
  std::vector<float> min;      // [k / group]; kNibble only
};

void split_q4_0(const std::uint8_t* src, std::int64_t k, RowQuants& out) {
  for (std::int64_t b = 0; b < k / 32; ++b, src += 18) {
    out.scale[b] = load_half(src);
    for (int j = 0; j < 16; ++j) {
      out.q[b * 32 + j] = static_cast<std::int8_t>(src[2 + j] & 0x0F);
      out.q[b * 32 + j + 16] = static_cast<std::int8_t>(src[2 + j] >> 4);
    }
  }
}

void split_q4_1(const std::uint8_t* src, std::int64_t k, RowQuants& out) {
  for (std::int64_t b = 0; b < k / 32; ++b, src += 20) {
    out.scale[b] = load_half(src);
    out.min[b] = load_half(src + 2);
    for (int j = 0; j < 16; ++j) {
      out.q[b * 32 + j] = static_cast<std::int8_t>(src[4 + j] & 0x0F);
      out.q[b * 32 + j + 16] = static_cast<std::int8_t>(src[4 + j] >> 4);
    }
  }
}

void split_q8_0(const std::uint8_t* src, std::int64_t k, RowQuants& out) {
  for (std::int64_t b = 0; b < k / 32; ++b, src += 34) {
    const float d = load_half(src);
    out.scale[2 * b] = d;
    out.scale[2 * b + 1] = d;
    for (int j = 0; j < 32; ++j)
      out.q[b * 32 + j] = static_cast<std::int8_t>(src[2 + j]);
  }
}

// Four runs of Q4_1's nibble layout under one d and m (common/dtype.h).
void split_q4_g128(const std::uint8_t* src, std::int64_t k, RowQuants& out) {
  for (std::int64_t b = 0; b < k / 128; ++b, src += 68) {
    const float d = load_half(src);
    const float m = load_half(src + 2);
    for (int run = 0; run < 4; ++run) {
      const std::int64_t group = b * 4 + run;
      const std::uint8_t* qs = src + 4 + 16 * run;
      out.scale[group] = d;
      out.min[group] = m;
      for (int j = 0; j < 16; ++j) {
        out.q[group * 32 + j] = static_cast<std::int8_t>(qs[j] & 0x0F);
        out.q[group * 32 + j + 16] = static_cast<std::int8_t>(qs[j] >> 4);
      }
    }
  }
}

void split_q8_r(const std::uint8_t* src, std::int64_t k, float d, RowQuants& out) {
  for (std::int64_t g = 0; g < k / 16; ++g)
    out.scale[g] = d;
  for (std::int64_t i = 0; i < k; ++i)
    out.q[i] = static_cast<std::int8_t>(src[i]);
}

// ggml's get_scale_min_k4.
void scale_min_k4(int j, const std::uint8_t* q, int* scale, int* min) {
  if (j < 4) {
    *scale = q[j] & 63;
    *min = q[j + 4] & 63;
  } else {
    *scale = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    *min = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

void split_q4_k(const std::uint8_t* src, std::int64_t k, RowQuants& out) {
  for (std::int64_t b = 0; b < k / 256; ++b, src += 144) {
    const float d = load_half(src);
    const float dmin = load_half(src + 2);
    const std::uint8_t* scales = src + 4;
    const std::uint8_t* q = src + 16;
    for (int chunk = 0; chunk < 4; ++chunk, q += 32) {
      for (int half = 0; half < 2; ++half) {
        const int sub = 2 * chunk + half;
        int sc = 0;
        int mn = 0;
        scale_min_k4(sub, scales, &sc, &mn);
        const std::int64_t group = b * 8 + sub;
        out.scale[group] = d * static_cast<float>(sc);
        out.min[group] = -(dmin * static_cast<float>(mn));
        for (int l = 0; l < 32; ++l) {
          out.q[group * 32 + l] = static_cast<std::int8_t>(half == 0 ? q[l] & 0xF : q[l] >> 4);
        }
      }
    }
  }
}

void split_q6_k(const std::uint8_t* src, std::int64_t k, RowQuants& out) {
  for (std::int64_t b = 0; b < k / 256; ++b, src += 210) {
    const float d = load_half(src + 208);
    for (int i = 0; i < 16; ++i) {
      out.scale[b * 16 + i] = d * static_cast<float>(static_cast<std::int8_t>(src[192 + i]));
    }
    const std::uint8_t* ql = src;
    const std::uint8_t* qh = src + 128;
    std::int8_t* q = out.q.data() + b * 256;
    for (int n = 0; n < 256; n += 128, q += 128, ql += 64, qh += 32) {
      for (int l = 0; l < 32; ++l) {
        q[l] = static_cast<std::int8_t>(((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
        q[l + 32] = static_cast<std::int8_t>(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
        q[l + 64] = static_cast<std::int8_t>(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
        q[l + 96] = static_cast<std::int8_t>(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
      }
    }
  }
}

void split_row(DType type, const std::uint8_t* src, std::int64_t k, float row_scale,
               RowQuants& out) {
  switch (type) {
    case DType::kQ4_0:
      return split_q4_0(src, k, out);
    case DType::kQ4_1:
      return split_q4_1(src, k, out);
    case DType::kQ8_0:
      return split_q8_0(src, k, out);
    case DType::kQ4_K:
      return split_q4_k(src, k, out);
    case DType::kQ6_K:
      return split_q6_k(src, k, out);
    case DType::kQ4_G128:
      return split_q4_g128(src, k, out);
    case DType::kQ8_R:
      return split_q8_r(src, k, row_scale, out);
    default:
      break;
  }
  fail(ErrorCode::kInternal,
       "quantised panels: " + std::string(dtype_name(type)) + " has no panel format");
}

}  // namespace

std::optional<QuantFormat> quant_format_for(DType type) {
  switch (type) {
    case DType::kQ4_0:
      return QuantFormat::kSignedNibble;
    case DType::kQ4_1:
    case DType::kQ4_K:
    case DType::kQ4_G128:
      return QuantFormat::kNibble;
    case DType::kQ8_0:
    case DType::kQ6_K:
    case DType::kQ8_R:
      return QuantFormat::kInt8;
    default:
      return std::nullopt;
  }
}

std::int64_t quant_panel_bytes(QuantFormat format, std::int64_t k) {
  const QuantFormatLayout layout = quant_format_layout(format);
  return k / layout.group * layout.group_bytes;
}

std::int64_t quant_packed_bytes(QuantFormat format, std::int64_t n, std::int64_t k) {
  return (n + kPanelWidth - 1) / kPanelWidth * quant_panel_bytes(format, k);
}

void pack_quant_rows(DType type, const std::uint8_t* src, const float* row_scales,
                     std::int64_t row_begin, std::int64_t row_end, std::int64_t k,
                     std::uint8_t* packed) {
  const QuantFormat format = *quant_format_for(type);
  const QuantFormatLayout layout = quant_format_layout(format);
  const std::int64_t groups = k / layout.group;
  const auto row_bytes =
      static_cast<std::int64_t>(*dtype_bytes(type, static_cast<std::uint64_t>(k)));
  RowQuants row;
  row.q.resize(static_cast<std::size_t>(k));
  row.scale.resize(static_cast<std::size_t>(groups));
  row.min.resize(static_cast<std::size_t>(groups));
  for (std::int64_t r = row_begin; r < row_end; ++r) {
    const float row_scale = row_scales != nullptr ? row_scales[r - row_begin] : 1.0f;
    split_row(type, src + (r - row_begin) * row_bytes, k, row_scale, row);
    const std::int64_t lane = r % kPanelWidth;
    std::uint8_t* panel = packed + r / kPanelWidth * quant_panel_bytes(format, k);
    for (std::int64_t g = 0; g < groups; ++g) {
      std::uint8_t* group = panel + g * layout.group_bytes;
      std::memcpy(group + lane * sizeof(float), &row.scale[g], sizeof(float));
      const std::int8_t* q = row.q.data() + g * layout.group;
      if (format == QuantFormat::kNibble) {
        std::memcpy(group + kGroupScaleBytes + lane * sizeof(float), &row.min[g], sizeof(float));
      }
      const int steps = quant_steps_per_word(format);
      const int bits = 32 / steps;
      for (std::int64_t word = 0; word < layout.group / steps; ++word) {
        std::uint32_t value = 0;
        for (int t = 0; t < steps; ++t) {
          const auto bits_of_q =
              static_cast<std::uint32_t>(static_cast<std::uint8_t>(q[word * steps + t])) &
              ((1u << bits) - 1);
          value |= bits_of_q << (bits * t);
        }
        std::memcpy(group + layout.quants_offset + (word * kPanelWidth + lane) * 4, &value, 4);
      }
    }
  }
}

void unpack_quant_row(QuantFormat format, const std::uint8_t* packed, std::int64_t row,
                      std::int64_t k, float* out) {
  const QuantFormatLayout layout = quant_format_layout(format);
  const std::int64_t lane = row % kPanelWidth;
  const std::uint8_t* panel = packed + row / kPanelWidth * quant_panel_bytes(format, k);
  for (std::int64_t g = 0; g < k / layout.group; ++g, out += layout.group) {
    const std::uint8_t* group = panel + g * layout.group_bytes;
    float scale = 0;
    std::memcpy(&scale, group + lane * sizeof(float), sizeof(float));
    float min = 0;
    if (format == QuantFormat::kNibble) {
      std::memcpy(&min, group + kGroupScaleBytes + lane * sizeof(float), sizeof(float));
    }
    const int steps = quant_steps_per_word(format);
    for (std::int64_t word = 0; word < layout.group / steps; ++word) {
      std::uint32_t value = 0;
      std::memcpy(&value, group + layout.quants_offset + (word * kPanelWidth + lane) * 4, 4);
      for (int t = 0; t < steps; ++t) {
        float& dst = out[word * steps + t];
        if (format == QuantFormat::kNibble) {
          dst = static_cast<float>((value >> (4 * t)) & 15) * scale + min;
        } else if (format == QuantFormat::kSignedNibble) {
          dst = static_cast<float>(static_cast<int>((value >> (4 * t)) & 15) - 8) * scale;
        } else {
          dst = static_cast<float>(static_cast<std::int8_t>((value >> (8 * t)) & 0xFF)) * scale;
        }
      }
    }
  }
}

}  // namespace conveyor::cpu
