#include "common/quant/int8_rows.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "common/dequantize.h"
#include "common/half.h"
#include "common/quant/weight_checks.h"
#include "common/status.h"

namespace conveyor::quant {

QuantizedTensor quantize_int8_rows(std::span<const float> w, std::int64_t n, std::int64_t k) {
  check_matrix(w, n, k, "int8 quantisation");
  QuantizedTensor out;
  out.dtype = DType::kQ8_R;
  out.shape = {n, k};
  out.bytes.resize(w.size());
  out.scales.resize(static_cast<std::size_t>(n) * 2);
  for (std::int64_t r = 0; r < n; ++r) {
    const float* row = w.data() + r * k;
    float amax = 0;
    for (std::int64_t i = 0; i < k; ++i)
      amax = std::max(amax, std::fabs(row[i]));
    std::uint16_t h = fp32_to_fp16(amax / 127.0f);
    if (amax > 0 && 127.0f * fp16_to_fp32(h) < amax) h = fp16_next_up(h);
    if (h >= 0x7C00u) {
      fail(ErrorCode::kInvalidArgument,
           "int8 quantisation: row " + std::to_string(r) + " needs a scale beyond f16's range");
    }
    const float d = fp16_to_fp32(h);
    out.scales[2 * static_cast<std::size_t>(r)] = static_cast<std::uint8_t>(h & 0xFF);
    out.scales[2 * static_cast<std::size_t>(r) + 1] = static_cast<std::uint8_t>(h >> 8);
    std::uint8_t* q = out.bytes.data() + r * k;
    for (std::int64_t i = 0; i < k; ++i) {
      // nearbyint rounds in the current mode: to nearest even unless someone changed it.
      const float steps = d > 0 ? std::clamp(std::nearbyint(row[i] / d), -127.0f, 127.0f) : 0.0f;
      q[i] = static_cast<std::uint8_t>(static_cast<std::int8_t>(steps));
    }
  }
  return out;
}

}  // namespace conveyor::quant
