// Integer quantisers: int8 per row (kQ8_R) and int4 per group (kQ4_G128, Q4_1), each
// round trip within its format's error bound.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "common/dequantize.h"
#include "common/quant/int4_groups.h"
#include "common/quant/int8_rows.h"
#include "common/quant/quantized_tensor.h"
#include "common/status.h"
#include "tests/quant/quant_test_util.h"

using namespace conveyor;
using namespace conveyor::quant;
using conveyor::testing::random_rows;

namespace {

float half_at(const std::vector<std::uint8_t>& bytes, std::size_t offset) {
  return fp16_to_fp32(static_cast<std::uint16_t>(bytes[offset] | (bytes[offset + 1] << 8)));
}

// A few ulps of f32 at the size of the numbers involved: the rounding of (w - m) / d
// and of q * d + m.
float slack(float w, float m, float d) {
  return (std::fabs(w) + std::fabs(m) + 16 * d) * 0x1p-20f;
}

}  // namespace

TEST_CASE("int8 rows: |w - q d| <= d / 2, q within -127..127, d an f16 per row") {
  const std::int64_t n = 40, k = 300;
  std::vector<float> w = random_rows(n, k, 1);
  std::fill(w.begin() + 3 * k, w.begin() + 4 * k, 0.0f);  // a row of zeros
  const QuantizedTensor q = quantize_int8_rows(w, n, k);
  CHECK(q.dtype == DType::kQ8_R);
  CHECK(q.shape == std::vector<std::int64_t>{n, k});
  REQUIRE(q.bytes.size() == static_cast<std::size_t>(n * k));
  REQUIRE(q.scales.size() == static_cast<std::size_t>(2 * n));
  const std::vector<float> back = dequantize_tensor(q.view("w"));
  for (std::int64_t r = 0; r < n; ++r) {
    CAPTURE(r);
    const float d = half_at(q.scales, static_cast<std::size_t>(2 * r));
    float amax = 0;
    for (std::int64_t i = 0; i < k; ++i)
      amax = std::max(amax, std::fabs(w[static_cast<std::size_t>(r * k + i)]));
    CHECK(127 * d >= amax);
    CHECK(d <= amax / 127 * (1 + 0x1p-9f) + 0x1p-23f);  // one f16 step at most above
    for (std::int64_t i = 0; i < k; ++i) {
      const auto at = static_cast<std::size_t>(r * k + i);
      const auto level = static_cast<std::int8_t>(q.bytes[at]);
      REQUIRE(level >= -127);
      REQUIRE(std::fabs(back[at] - w[at]) <= d / 2 + slack(w[at], 0, d));
    }
  }
  CHECK(half_at(q.scales, 6) == 0.0f);
}

TEST_CASE("int8 rows refuse what they cannot hold") {
  std::vector<float> w(64, 1.0f);
  CHECK_THROWS_AS(quantize_int8_rows(w, 2, 33), Error);  // not n * k
  w[5] = std::nanf("");
  CHECK_THROWS_AS(quantize_int8_rows(w, 2, 32), Error);
  w[5] = 1e7f;  // 1e7 / 127 is beyond f16
  CHECK_THROWS_AS(quantize_int8_rows(w, 2, 32), Error);
}

TEST_CASE("int4 groups: |w - (q d + m)| <= max(d / 2, f16 rounding of the minimum)") {
  for (DType type : {DType::kQ4_G128, DType::kQ4_1}) {
    CAPTURE(dtype_name(type));
    const std::int64_t group = dtype_layout(type).block_elements;
    const std::int64_t block = dtype_layout(type).block_bytes;
    const std::int64_t n = 24, k = 384;
    std::vector<float> w = random_rows(n, k, 2);
    std::fill(w.begin() + 5 * k, w.begin() + 5 * k + group, 0.375f);  // a constant group
    const QuantizedTensor q = quantize_int4_groups(type, w, n, k);
    CHECK(q.dtype == type);
    REQUIRE(q.bytes.size() == static_cast<std::size_t>(n * k / group * block));
    CHECK(q.scales.empty());
    const std::vector<float> back = dequantize_tensor(q.view("w"));
    for (std::int64_t g = 0; g < n * k / group; ++g) {
      CAPTURE(g);
      const float d = half_at(q.bytes, static_cast<std::size_t>(g * block));
      const float m = half_at(q.bytes, static_cast<std::size_t>(g * block + 2));
      const float* x = w.data() + g * group;
      const float lo = *std::min_element(x, x + group);
      const float hi = *std::max_element(x, x + group);
      CHECK(d >= 0);
      CHECK(m + 15 * d >= hi);
      const float bound = std::max(d / 2, std::fabs(m - lo));
      for (std::int64_t i = 0; i < group; ++i) {
        const auto at = static_cast<std::size_t>(g * group + i);
        REQUIRE(std::fabs(back[at] - w[at]) <= bound + slack(w[at], m, d));
      }
    }
    // The constant group: d = 0, every value m = 0.375 (exact in f16).
    for (std::int64_t i = 0; i < group; ++i)
      CHECK(back[static_cast<std::size_t>(5 * k + i)] == 0.375f);
  }
}

TEST_CASE("a Q4_G128 block is four Q4_1 blocks sharing d and m") {
  const std::int64_t k = 256;
  const std::vector<float> w = random_rows(1, k, 3);
  const QuantizedTensor q = quantize_int4_groups(DType::kQ4_G128, w, 1, k);
  std::vector<std::uint8_t> q4_1;
  for (std::int64_t b = 0; b < k / 128; ++b) {
    const std::uint8_t* block = q.bytes.data() + b * 68;
    for (int run = 0; run < 4; ++run) {
      q4_1.insert(q4_1.end(), block, block + 4);
      q4_1.insert(q4_1.end(), block + 4 + 16 * run, block + 4 + 16 * (run + 1));
    }
  }
  std::vector<float> expected(static_cast<std::size_t>(k));
  dequantize_row(DType::kQ4_1, q4_1.data(), expected.data(), k);
  std::vector<float> got(static_cast<std::size_t>(k));
  dequantize_row(DType::kQ4_G128, q.bytes.data(), got.data(), k);
  CHECK(std::memcmp(got.data(), expected.data(), got.size() * sizeof(float)) == 0);
}

TEST_CASE("int4 groups refuse a k that is not whole groups, and other types") {
  const std::vector<float> w(2 * 96, 0.5f);
  CHECK_THROWS_AS(quantize_int4_groups(DType::kQ4_G128, w, 2, 96), Error);
  CHECK_NOTHROW(quantize_int4_groups(DType::kQ4_1, w, 2, 96));
  CHECK_THROWS_AS(quantize_int4_groups(DType::kQ4_0, w, 2, 96), Error);
  CHECK_THROWS_AS(quantize_weight(DType::kQ6_K, w, 2, 96), Error);
}
