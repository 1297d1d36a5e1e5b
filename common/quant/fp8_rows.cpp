#include "common/quant/fp8_rows.h"

#include <algorithm>
#include <bit>
#include <cmath>

#include "common/fp8.h"
#include "common/quant/weight_checks.h"

namespace conveyor::quant {

void quantize_rows_e4m3(const float* x, std::int64_t rows, std::int64_t k, std::uint8_t* codes,
                        float* scales) {
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* row = x + r * k;
    float amax = 0;
    for (std::int64_t i = 0; i < k; ++i)
      amax = std::max(amax, std::fabs(row[i]));  // a NaN is skipped, and coded below
    float s = amax / kFp8E4M3Max;
    if (s == 0) s = 1;
    scales[r] = s;
    std::uint8_t* q = codes + r * k;
    for (std::int64_t i = 0; i < k; ++i)
      q[i] = fp32_to_fp8_e4m3(row[i] / s);
  }
}

QuantizedTensor quantize_fp8_rows(std::span<const float> w, std::int64_t n, std::int64_t k) {
  check_matrix(w, n, k, "fp8 quantisation");
  QuantizedTensor out;
  out.dtype = DType::kF8_R;
  out.shape = {n, k};
  out.bytes.resize(w.size());
  std::vector<float> scales(static_cast<std::size_t>(n));
  quantize_rows_e4m3(w.data(), n, k, out.bytes.data(), scales.data());
  out.scales.resize(scales.size() * 4);
  for (std::size_t r = 0; r < scales.size(); ++r) {
    const auto bits = std::bit_cast<std::uint32_t>(scales[r]);
    for (int b = 0; b < 4; ++b)  // little-endian
      out.scales[4 * r + static_cast<std::size_t>(b)] = static_cast<std::uint8_t>(bits >> (8 * b));
  }
  return out;
}

}  // namespace conveyor::quant
