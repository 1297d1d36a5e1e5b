#include "common/quant/int4_groups.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "common/dequantize.h"
#include "common/half.h"
#include "common/quant/weight_checks.h"
#include "common/status.h"

namespace conveyor::quant {
namespace {

constexpr int kRun = 32;  // values per run of 16 nibble bytes, laid out as Q4_1's block

void put_u16(std::uint8_t* p, std::uint16_t v) {  // little-endian
  p[0] = static_cast<std::uint8_t>(v & 0xFF);
  p[1] = static_cast<std::uint8_t>(v >> 8);
}

// One group of `group` values into one block: f16 d, f16 m, then group / 32 runs of 16
// bytes, byte j of a run holding its values j (low nibble) and j + 16 (high).
void quantize_group(const float* w, std::int64_t group, std::uint8_t* block) {
  const auto [lo_it, hi_it] = std::minmax_element(w, w + group);
  const float lo = *lo_it;
  const float hi = *hi_it;
  const std::uint16_t m_half = fp32_to_fp16(lo);
  const float m = fp16_to_fp32(m_half);
  std::uint16_t d_half = fp32_to_fp16(std::max(0.0f, (hi - m) / 15.0f));
  if (15.0f * fp16_to_fp32(d_half) + m < hi) d_half = fp16_next_up(d_half);
  const float d = fp16_to_fp32(d_half);
  if (!std::isfinite(d) || !std::isfinite(m)) {
    fail(ErrorCode::kInvalidArgument, "int4 quantisation: a group's range is beyond f16's");
  }
  put_u16(block, d_half);
  put_u16(block + 2, m_half);
  std::uint8_t* qs = block + 4;
  for (std::int64_t run = 0; run < group / kRun; ++run, qs += kRun / 2) {
    const float* x = w + run * kRun;
    for (int j = 0; j < kRun / 2; ++j) {
      // nearbyint rounds in the current mode: to nearest even unless someone changed it.
      auto level = [&](float v) {
        return d > 0 ? static_cast<int>(std::clamp(std::nearbyint((v - m) / d), 0.0f, 15.0f)) : 0;
      };
      qs[j] = static_cast<std::uint8_t>(level(x[j]) | (level(x[j + kRun / 2]) << 4));
    }
  }
}

}  // namespace

QuantizedTensor quantize_int4_groups(DType type, std::span<const float> w, std::int64_t n,
                                     std::int64_t k) {
  if (type != DType::kQ4_G128 && type != DType::kQ4_1) {
    fail(ErrorCode::kInvalidArgument,
         "int4 quantisation: " + std::string(dtype_name(type)) + " is not a group-wise int4 type");
  }
  check_matrix(w, n, k, "int4 quantisation");
  const DTypeLayout layout = dtype_layout(type);
  const std::int64_t group = layout.block_elements;
  if (k % group != 0) {
    fail(ErrorCode::kInvalidArgument,
         "int4 quantisation: rows of " + std::to_string(k) + " values are not a whole number of " +
             std::string(dtype_name(type)) + " groups of " + std::to_string(group));
  }
  QuantizedTensor out;
  out.dtype = type;
  out.shape = {n, k};
  out.bytes.resize(*dtype_bytes(type, w.size()));
  const std::int64_t blocks = n * (k / group);
  for (std::int64_t b = 0; b < blocks; ++b) {
    quantize_group(w.data() + b * group, group, out.bytes.data() + b * layout.block_bytes);
  }
  return out;
}

}  // namespace conveyor::quant
