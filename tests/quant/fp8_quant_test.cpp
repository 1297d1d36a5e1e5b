// FP8 rows (kF8_R) and the dynamic per-token activation quantisation.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "common/dequantize.h"
#include "common/fp8.h"
#include "common/quant/fp8_rows.h"
#include "common/status.h"
#include "tests/quant/quant_test_util.h"

using namespace conveyor;
using namespace conveyor::quant;
using conveyor::testing::random_rows;

TEST_CASE("fp8 rows: s = max|w| / 448, values within 2^-4 (normal) or 2^-10 s (subnormal)") {
  const std::int64_t n = 30, k = 200;
  std::vector<float> w = random_rows(n, k, 4);
  std::fill(w.begin() + 2 * k, w.begin() + 3 * k, 0.0f);
  const QuantizedTensor q = quantize_fp8_rows(w, n, k);
  CHECK(q.dtype == DType::kF8_R);
  REQUIRE(q.bytes.size() == static_cast<std::size_t>(n * k));
  REQUIRE(q.scales.size() == static_cast<std::size_t>(4 * n));
  const TensorRef view = q.view("w");
  const std::vector<float> back = dequantize_tensor(view);
  for (std::int64_t r = 0; r < n; ++r) {
    CAPTURE(r);
    const float s = tensor_row_scale(view, r);
    float amax = 0;
    for (std::int64_t i = 0; i < k; ++i)
      amax = std::max(amax, std::fabs(w[static_cast<std::size_t>(r * k + i)]));
    CHECK(s == (amax > 0 ? amax / 448.0f : 1.0f));
    bool saw_max = false;
    for (std::int64_t i = 0; i < k; ++i) {
      const auto at = static_cast<std::size_t>(r * k + i);
      REQUIRE((q.bytes[at] & 0x7F) != 0x7F);  // never NaN
      saw_max = saw_max || (q.bytes[at] & 0x7F) == kFp8E4M3MaxCode;
      const float error = std::fabs(back[at] - w[at]);
      if (std::fabs(w[at]) >= 0x1p-6f * s) {
        REQUIRE(error <= std::fabs(w[at]) * (0x1p-4f + 0x1p-20f));
      } else {
        REQUIRE(error <= 0x1p-10f * s * (1 + 0x1p-20f));
      }
    }
    CHECK(saw_max == (amax > 0));  // the largest value sits at 448
  }
}

TEST_CASE("per-token activation quantisation: one scale per row, NaN and infinity carried") {
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> x = {1.0f, -2.0f,         0.5f, 4.0f,  // s = 4 / 448
                                0.0f, 0.0f,          0.0f, 0.0f,  // zeros: s = 1
                                1.0f, std::nanf(""), 2.0f, 3.0f, 1.0f, inf, 2.0f, -3.0f};
  std::vector<std::uint8_t> codes(x.size());
  std::vector<float> scales(4);
  quantize_rows_e4m3(x.data(), 4, 4, codes.data(), scales.data());
  CHECK(scales[0] == 4.0f / 448.0f);
  CHECK(fp8_e4m3_to_fp32(codes[3]) == 448.0f);
  CHECK(fp8_e4m3_to_fp32(codes[1]) * scales[0] == doctest::Approx(-2.0f).epsilon(1.0 / 16));
  CHECK(scales[1] == 1.0f);
  for (int i = 4; i < 8; ++i)
    CHECK(codes[static_cast<std::size_t>(i)] == 0);
  CHECK(scales[2] == 3.0f / 448.0f);              // the NaN is skipped for the scale...
  CHECK(std::isnan(fp8_e4m3_to_fp32(codes[9])));  // ...and stays NaN
  CHECK(scales[3] == inf);
  CHECK(std::isnan(fp8_e4m3_to_fp32(codes[13])));  // inf / inf
}

TEST_CASE("fp8 rows refuse non-finite weights") {
  std::vector<float> w(32, 1.0f);
  w[3] = std::numeric_limits<float>::infinity();
  CHECK_THROWS_AS(quantize_fp8_rows(w, 1, 32), Error);
}
