#include <doctest/doctest.h>

#include <vector>

#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/cpu_gemm.h"
#include "tests/cpu/cpu_test_util.h"

using namespace conveyor;
using namespace conveyor::testing;

namespace {

// y = x W^T + bias in double.
std::vector<float> naive_gemm(const std::vector<float>& x, const std::vector<float>& w,
                              const std::vector<float>* bias, std::int64_t m, std::int64_t n,
                              std::int64_t k) {
  std::vector<float> y(static_cast<std::size_t>(m * n));
  for (std::int64_t i = 0; i < m; ++i) {
    for (std::int64_t j = 0; j < n; ++j) {
      double s = bias ? (*bias)[static_cast<std::size_t>(j)] : 0.0;
      for (std::int64_t t = 0; t < k; ++t) {
        s += static_cast<double>(x[static_cast<std::size_t>(i * k + t)]) *
             w[static_cast<std::size_t>(j * k + t)];
      }
      y[static_cast<std::size_t>(i * n + j)] = static_cast<float>(s);
    }
  }
  return y;
}

}  // namespace

TEST_CASE("gemm matches a naive double-precision product on every instruction set") {
  struct Shape {
    std::int64_t m, n, k;
  };
  const Shape shapes[] = {{1, 1, 1},    {1, 7, 3},    {1, 64, 64},  {3, 33, 17},  {4, 100, 576},
                          {5, 37, 129}, {64, 48, 64}, {67, 70, 96}, {130, 9, 31}, {2, 320, 64}};
  for (CpuIsa isa : supported_isas()) {
    CAPTURE(cpu_isa_name(isa));
    CpuBackend backend(cpu_options(3, isa));
    for (const Shape& s : shapes) {
      CAPTURE(s.m);
      CAPTURE(s.n);
      CAPTURE(s.k);
      const auto x = random_floats(static_cast<std::size_t>(s.m * s.k), 1);
      const auto w_data = random_floats(static_cast<std::size_t>(s.n * s.k), 2);
      const auto b_data = random_floats(static_cast<std::size_t>(s.n), 3);
      auto w = backend.upload_weight(f32_tensor("w", w_data, {s.n, s.k}));
      auto b = backend.upload_weight(f32_tensor("b", b_data, {s.n}));

      std::vector<float> y(static_cast<std::size_t>(s.m * s.n));
      backend.gemm(x.data(), s.m, *w, y.data());
      const auto expected = naive_gemm(x, w_data, nullptr, s.m, s.n, s.k);
      const float tolerance = 1e-5f * static_cast<float>(s.k);
      CHECK(max_abs_diff(y.data(), expected.data(), y.size()) < tolerance);

      backend.gemm(x.data(), s.m, *w, y.data(), {.bias = b.get()});
      const auto with_bias = naive_gemm(x, w_data, &b_data, s.m, s.n, s.k);
      CHECK(max_abs_diff(y.data(), with_bias.data(), y.size()) < tolerance);

      // Accumulate: y was x W^T + b; adding x W^T again gives 2 x W^T + b.
      backend.gemm(x.data(), s.m, *w, y.data(), {.accumulate = true});
      std::vector<float> twice(y.size());
      for (std::size_t i = 0; i < y.size(); ++i)
        twice[i] = expected[i] + with_bias[i];
      CHECK(max_abs_diff(y.data(), twice.data(), y.size()) < 2 * tolerance);
    }
  }
}

TEST_CASE("gemm rows do not depend on batch size or thread count, bit for bit") {
  const std::int64_t m = 70;
  const std::int64_t n = 200;
  const std::int64_t k = 150;
  const auto x = random_floats(static_cast<std::size_t>(m * k), 4);
  const auto w_data = random_floats(static_cast<std::size_t>(n * k), 5);
  for (CpuIsa isa : supported_isas()) {
    CAPTURE(cpu_isa_name(isa));
    CpuBackend single(cpu_options(1, isa));
    CpuBackend multi(cpu_options(4, isa));
    auto w1 = single.upload_weight(f32_tensor("w", w_data, {n, k}));
    auto w4 = multi.upload_weight(f32_tensor("w", w_data, {n, k}));

    std::vector<float> all_single(static_cast<std::size_t>(m * n));
    std::vector<float> all_multi(all_single.size());
    single.gemm(x.data(), m, *w1, all_single.data());
    multi.gemm(x.data(), m, *w4, all_multi.data());
    CHECK(bitwise_equal(all_single.data(), all_multi.data(), all_single.size()));

    // Each row alone, and odd-sized slices, give the same bits as the full batch.
    for (std::int64_t row0 : {0, 1, 5, 63, 69}) {
      for (std::int64_t rows : {1, 2, 3, 5}) {
        if (row0 + rows > m) continue;
        std::vector<float> part(static_cast<std::size_t>(rows * n));
        multi.gemm(x.data() + row0 * k, rows, *w4, part.data());
        CHECK(bitwise_equal(part.data(), all_multi.data() + row0 * n, part.size()));
      }
    }
  }
}

TEST_CASE("gemm gives the same bits with AVX2 and AVX-512: one multiply-add order") {
  if (detect_cpu_isa() < CpuIsa::kAvx512) return;
  const std::int64_t m = 9, n = 70, k = 45;
  const auto x = random_floats(static_cast<std::size_t>(m * k), 6);
  const auto w_data = random_floats(static_cast<std::size_t>(n * k), 7);
  CpuBackend avx2(cpu_options(2, CpuIsa::kAvx2));
  CpuBackend avx512(cpu_options(2, CpuIsa::kAvx512));
  auto w2 = avx2.upload_weight(f32_tensor("w", w_data, {n, k}));
  auto w5 = avx512.upload_weight(f32_tensor("w", w_data, {n, k}));
  std::vector<float> y2(static_cast<std::size_t>(m * n)), y5(y2.size());
  avx2.gemm(x.data(), m, *w2, y2.data());
  avx512.gemm(x.data(), m, *w5, y5.data());
  CHECK(bitwise_equal(y2.data(), y5.data(), y2.size()));
}
