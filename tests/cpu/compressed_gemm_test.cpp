// Weights in Conveyor's compressed formats, made by the quantisers, on the CPU backend:
// Q4_G128 and Q8_R compute from their 4- and 8-bit quants and give gemm_f32's bits on
// the dequantised weights; F8_R's emulated W8A8 GEMM equals a plain reference
// emulation, bit for bit.
#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/dequantize.h"
#include "common/fp8.h"
#include "common/quant/fp8_rows.h"
#include "common/quant/quantized_tensor.h"
#include "common/status.h"
#include "kernels/cpu/cpu_backend.h"
#include "tests/cpu/cpu_test_util.h"

using namespace conveyor;
using namespace conveyor::testing;

namespace {

struct Shape {
  std::int64_t n, k;
};

quant::QuantizedTensor quantized(DType type, const Shape& s, std::uint32_t seed) {
  const auto w = random_floats(static_cast<std::size_t>(s.n * s.k), seed, 0.05f);
  return quant::quantize_weight(type, w, s.n, s.k);
}

// y = x W^T (+ bias, or accumulated) as the W8A8 emulation defines it, one output at
// a time: each x row quantised to E4M3 with its own scale, decoded products summed in
// f32 over k in order, the sum scaled by sx * sw.
void reference_fp8(const std::vector<float>& x, std::int64_t m, const TensorRef& w,
                   const std::vector<float>* bias, bool accumulate, std::vector<float>& y) {
  const std::int64_t n = w.shape[0], k = w.shape[1];
  std::vector<std::uint8_t> codes(x.size());
  std::vector<float> sx(static_cast<std::size_t>(m));
  quant::quantize_rows_e4m3(x.data(), m, k, codes.data(), sx.data());
  for (std::int64_t i = 0; i < m; ++i) {
    for (std::int64_t j = 0; j < n; ++j) {
      float acc = 0;
      for (std::int64_t l = 0; l < k; ++l) {
        acc += fp8_e4m3_to_fp32(codes[static_cast<std::size_t>(i * k + l)]) *
               fp8_e4m3_to_fp32(w.bytes[static_cast<std::size_t>(j * k + l)]);
      }
      const float scale = sx[static_cast<std::size_t>(i)] * tensor_row_scale(w, j);
      float v = acc * scale;
      if (bias != nullptr) v += (*bias)[static_cast<std::size_t>(j)];
      float& out = y[static_cast<std::size_t>(i * n + j)];
      out = accumulate ? out + v : v;
    }
  }
}

}  // namespace

TEST_CASE("Q4_G128 and Q8_R weights give gemm_f32's bits on the dequantised weights") {
  const std::vector<std::pair<DType, std::vector<Shape>>> cases = {
      {DType::kQ4_G128, {{1, 128}, {33, 256}, {70, 640}, {40, 8192}}},
      // k = 40 is no whole number of the int8 panels' groups of 16: dequantised at load.
      {DType::kQ8_R, {{1, 16}, {33, 48}, {70, 576}, {20, 40}, {40, 8192}}},
  };
  for (CpuIsa isa : supported_isas()) {
    CAPTURE(cpu_isa_name(isa));
    CpuBackend backend(cpu_options(2, isa));
    for (const auto& [type, shapes] : cases) {
      CAPTURE(dtype_name(type));
      for (const Shape& s : shapes) {
        CAPTURE(s.n);
        CAPTURE(s.k);
        const quant::QuantizedTensor q = quantized(type, s, static_cast<std::uint32_t>(s.n + s.k));
        const std::vector<float> dense = dequantize_tensor(q.view("w"));
        auto wq = backend.upload_weight(q.view("w"));
        auto wf = backend.upload_weight(f32_tensor("w", dense, {s.n, s.k}));
        if (s.k % 16 == 0) CHECK(wq->resident_bytes() * 3 < wf->resident_bytes());
        const auto b_data = random_floats(static_cast<std::size_t>(s.n), 9);
        auto bias = backend.upload_weight(f32_tensor("b", b_data, {s.n}));
        for (std::int64_t m : {1, 2, 3, 4, 64}) {
          CAPTURE(m);
          const auto x = random_floats(static_cast<std::size_t>(m * s.k), 11);
          std::vector<float> yq(static_cast<std::size_t>(m * s.n));
          std::vector<float> yf(yq.size());
          backend.gemm(x.data(), m, *wq, yq.data());
          backend.gemm(x.data(), m, *wf, yf.data());
          CHECK(bitwise_equal(yq.data(), yf.data(), yq.size()));
          backend.gemm(x.data(), m, *wq, yq.data(), {.bias = bias.get(), .accumulate = true});
          backend.gemm(x.data(), m, *wf, yf.data(), {.bias = bias.get(), .accumulate = true});
          CHECK(bitwise_equal(yq.data(), yf.data(), yq.size()));
        }
      }
    }
  }
}

TEST_CASE("embedding rows of Q4_G128, Q8_R and F8_R tables equal their dequantised rows") {
  const Shape s{37, 256};
  CpuBackend backend(cpu_options(2));
  for (DType type : {DType::kQ4_G128, DType::kQ8_R, DType::kF8_R}) {
    CAPTURE(dtype_name(type));
    const quant::QuantizedTensor q = quantized(type, s, 14);
    const std::vector<float> dense = dequantize_tensor(q.view("w"));
    auto table = backend.upload_weight(q.view("w"));
    const std::vector<std::int32_t> tokens{0, 15, 16, 36};
    auto step = positions_step(backend, {0, 1, 2, 3}, tokens);
    std::vector<float> out(tokens.size() * static_cast<std::size_t>(s.k));
    backend.embed(*table, *step, out.data());
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      CHECK(bitwise_equal(out.data() + i * static_cast<std::size_t>(s.k),
                          dense.data() + tokens[i] * s.k, static_cast<std::size_t>(s.k)));
    }
  }
}

TEST_CASE("weights that do not hold their format are refused at upload") {
  CpuBackend backend(cpu_options(1));
  // Q4_G128 rows of 64: not a whole block of 128.
  const std::vector<std::uint8_t> block(68, 0);
  TensorRef t;
  t.name = "w";
  t.dtype = DType::kQ4_G128;
  t.shape = {1, 64};
  t.bytes = block;
  CHECK_THROWS_AS(backend.upload_weight(t), Error);
  // Q8_R and F8_R without their row scales.
  const quant::QuantizedTensor q8 = quantized(DType::kQ8_R, {4, 32}, 1);
  const quant::QuantizedTensor f8 = quantized(DType::kF8_R, {4, 32}, 1);
  for (const quant::QuantizedTensor* q : {&q8, &f8}) {
    TensorRef v = q->view("w");
    v.scales = v.scales.first(v.scales.size() - 1);
    CHECK_THROWS_AS(backend.upload_weight(v), Error);
    v.scales = {};
    CHECK_THROWS_AS(backend.upload_weight(v), Error);
  }
}

TEST_CASE("F8_R: the emulated W8A8 GEMM equals a reference emulation, bit for bit") {
  const Shape shapes[] = {{1, 32}, {33, 100}, {70, 576}, {40, 4096}};
  for (CpuIsa isa : supported_isas()) {
    CAPTURE(cpu_isa_name(isa));
    for (int threads : {1, 3}) {
      CAPTURE(threads);
      CpuBackend backend(cpu_options(threads, isa));
      for (const Shape& s : shapes) {
        CAPTURE(s.n);
        CAPTURE(s.k);
        const quant::QuantizedTensor q =
            quantized(DType::kF8_R, s, static_cast<std::uint32_t>(s.k));
        const TensorRef view = q.view("w");
        auto w = backend.upload_weight(view);
        CHECK(w->resident_bytes() < static_cast<std::size_t>(s.n * s.k + 4 * s.n + 64));
        const auto b_data = random_floats(static_cast<std::size_t>(s.n), 9);
        auto bias = backend.upload_weight(f32_tensor("b", b_data, {s.n}));
        for (std::int64_t m : {1, 2, 3, 4, 17, 64}) {
          CAPTURE(m);
          // Rows of very different sizes: each gets its own activation scale.
          auto x = random_floats(static_cast<std::size_t>(m * s.k), 12);
          for (std::int64_t i = 0; i < m; ++i) {
            for (std::int64_t l = 0; l < s.k; ++l)
              x[static_cast<std::size_t>(i * s.k + l)] *= static_cast<float>(1 + 7 * (i % 5));
          }
          std::vector<float> y(static_cast<std::size_t>(m * s.n));
          std::vector<float> expected(y.size());
          backend.gemm(x.data(), m, *w, y.data());
          reference_fp8(x, m, view, nullptr, false, expected);
          CHECK(bitwise_equal(y.data(), expected.data(), y.size()));
          backend.gemm(x.data(), m, *w, y.data(), {.bias = bias.get(), .accumulate = true});
          reference_fp8(x, m, view, &b_data, true, expected);
          CHECK(bitwise_equal(y.data(), expected.data(), y.size()));
        }
      }
    }
  }
}

TEST_CASE("F8_R dequantised at load runs as W8A16, close to the W8A8 emulation") {
  const Shape s{48, 512};
  const quant::QuantizedTensor q = quantized(DType::kF8_R, s, 3);
  CpuBackend w8a8(cpu_options(2));
  CpuBackendOptions dequantize = cpu_options(2);
  dequantize.dequantize_weights = true;
  CpuBackend w8a16(dequantize);
  auto a = w8a8.upload_weight(q.view("w"));
  auto b = w8a16.upload_weight(q.view("w"));
  const std::int64_t m = 4;
  const auto x = random_floats(static_cast<std::size_t>(m * s.k), 5);
  std::vector<float> ya(static_cast<std::size_t>(m * s.n)), yb(ya.size());
  w8a8.gemm(x.data(), m, *a, ya.data());
  w8a16.gemm(x.data(), m, *b, yb.data());
  CHECK_FALSE(bitwise_equal(ya.data(), yb.data(), ya.size()));  // x is quantised in one only
  float scale = 0;
  for (float v : yb)
    scale = std::max(scale, std::fabs(v));
  CHECK(max_abs_diff(ya.data(), yb.data(), ya.size()) < 0.1f * scale);
}
