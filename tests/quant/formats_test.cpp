// The compressed formats' sizes, names and row scales (common/dtype.h,
// common/dequantize.h): what loaders and backends rely on.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "common/dequantize.h"
#include "common/dtype.h"
#include "common/quant/quantized_tensor.h"
#include "common/status.h"

using namespace conveyor;

TEST_CASE("compressed formats: sizes, names, row scales") {
  CHECK(dtype_bytes(DType::kQ4_G128, 256) == 136u);
  CHECK(!dtype_bytes(DType::kQ4_G128, 64).has_value());
  CHECK(dtype_bytes(DType::kQ8_R, 100) == 100u);  // the values only
  CHECK(dtype_bytes(DType::kF8_R, 100) == 100u);
  CHECK(dtype_row_scale_bytes(DType::kQ8_R) == 2);
  CHECK(dtype_row_scale_bytes(DType::kF8_R) == 4);
  CHECK(dtype_row_scale_bytes(DType::kQ4_G128) == 0);
  CHECK(dtype_row_scale_bytes(DType::kQ8_0) == 0);
  for (DType t : {DType::kQ4_G128, DType::kQ8_R, DType::kF8_R}) {
    CHECK(dtype_is_quantized(t));
    CHECK(dtype_from_name(dtype_name(t)) == t);
  }
  CHECK(dtype_name(DType::kQ4_G128) == "q4_g128");
  CHECK(dtype_name(DType::kQ8_R) == "q8_r");
  CHECK(dtype_name(DType::kF8_R) == "f8_r");
  CHECK_FALSE(dtype_is_quantized(DType::kBF16));
}

TEST_CASE("row-scaled values dequantise only with their row's scale") {
  // Q8_R [2, 3]: rows scaled by 0.5 and -2 (f16 0x3800, 0xC000).
  const std::vector<std::uint8_t> values = {1, 0xFF, 4, 2, 3, 0x80};
  const std::vector<std::uint8_t> scales = {0x00, 0x38, 0x00, 0xC0};
  TensorRef t;
  t.name = "w";
  t.dtype = DType::kQ8_R;
  t.shape = {2, 3};
  t.bytes = values;
  t.scales = scales;
  CHECK(row_scales_match(t));
  CHECK(tensor_row_scale(t, 0) == 0.5f);
  CHECK(tensor_row_scale(t, 1) == -2.0f);
  CHECK(dequantize_tensor(t) == std::vector<float>{0.5f, -0.5f, 2.0f, -4.0f, -6.0f, 256.0f});
  float out[3];
  CHECK_THROWS_AS(dequantize_row(DType::kQ8_R, values.data(), out, 3), Error);
  dequantize_row(DType::kQ8_R, values.data(), out, 3, 0.5f);
  CHECK(out[1] == -0.5f);

  t.scales = std::span<const std::uint8_t>(scales).first(2);  // one row's worth
  CHECK_FALSE(row_scales_match(t));
  CHECK_THROWS_AS(dequantize_tensor(t), Error);
  t.dtype = DType::kF8_R;  // needs 4 bytes a row
  t.scales = scales;
  CHECK_FALSE(row_scales_match(t));
  t.dtype = DType::kQ8_0;  // needs none
  CHECK_FALSE(row_scales_match(t));
  t.scales = {};
  CHECK(row_scales_match(t));
  CHECK(tensor_row_scale(t, 1) == 1.0f);
}

TEST_CASE("F8_R decodes e4m3(q) * s with an f32 scale per row") {
  const std::vector<std::uint8_t> values = {0x38, 0xB8, 0x7E, 0x01};  // 1, -1, 448, 2^-9
  std::vector<std::uint8_t> scales(8);
  const float s[2] = {0.25f, 3.0f};
  std::memcpy(scales.data(), s, sizeof(s));
  TensorRef t;
  t.name = "w";
  t.dtype = DType::kF8_R;
  t.shape = {2, 2};
  t.bytes = values;
  t.scales = scales;
  CHECK(dequantize_tensor(t) == std::vector<float>{0.25f, -0.25f, 1344.0f, 3 * 0x1p-9f});
}

TEST_CASE("quantize_weight dispatches on the type and views its bytes") {
  std::vector<float> w(2 * 128);
  for (std::size_t i = 0; i < w.size(); ++i)
    w[i] = static_cast<float>(i % 17) - 8.0f;
  for (DType t : {DType::kQ8_R, DType::kQ4_G128, DType::kQ4_1, DType::kF8_R}) {
    CAPTURE(dtype_name(t));
    const quant::QuantizedTensor q = quant::quantize_weight(t, w, 2, 128);
    const TensorRef view = q.view("w");
    CHECK(view.dtype == t);
    CHECK(view.shape == std::vector<std::int64_t>{2, 128});
    CHECK(view.bytes.data() == q.bytes.data());
    CHECK(view.bytes.size() == *dtype_bytes(t, w.size()));
    CHECK(row_scales_match(view));
    const std::vector<float> back = dequantize_tensor(view);
    for (std::size_t i = 0; i < w.size(); ++i)
      REQUIRE(std::fabs(back[i] - w[i]) <= 0.6f);  // 16 levels over 16: within half a step
  }
}
