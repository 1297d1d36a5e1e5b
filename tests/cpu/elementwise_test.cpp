#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "common/status.h"
#include "kernels/cpu/cpu_backend.h"
#include "tests/cpu/cpu_test_util.h"

using namespace conveyor;
using namespace conveyor::testing;

TEST_CASE("rmsnorm matches the formula, with and without a fused residual add") {
  CpuBackend backend(cpu_options(2));
  const std::int64_t rows = 300;  // enough to take the multi-threaded path
  const std::int64_t cols = 130;
  const float eps = 1e-5f;
  const auto x0 = random_floats(static_cast<std::size_t>(rows * cols), 1);
  const auto delta = random_floats(x0.size(), 2);
  const auto w_data = random_floats(static_cast<std::size_t>(cols), 3);
  auto w = backend.upload_weight(f32_tensor("norm", w_data, {cols}));

  auto expected_norm = [&](const std::vector<float>& x) {
    std::vector<float> out(x.size());
    for (std::int64_t r = 0; r < rows; ++r) {
      double ss = 0;
      for (std::int64_t c = 0; c < cols; ++c)
        ss += std::pow(x[r * cols + c], 2.0);
      const double inv = 1.0 / std::sqrt(ss / cols + eps);
      for (std::int64_t c = 0; c < cols; ++c) {
        out[r * cols + c] = static_cast<float>(x[r * cols + c] * inv * w_data[c]);
      }
    }
    return out;
  };

  std::vector<float> x = x0;
  std::vector<float> out(x.size());
  backend.rmsnorm(x.data(), nullptr, rows, *w, eps, out.data());
  CHECK(max_abs_diff(out.data(), expected_norm(x0).data(), out.size()) < 1e-5f);
  CHECK(bitwise_equal(x.data(), x0.data(), x.size()));  // untouched without an add

  backend.rmsnorm(x.data(), delta.data(), rows, *w, eps, out.data());
  std::vector<float> sum(x0.size());
  for (std::size_t i = 0; i < sum.size(); ++i)
    sum[i] = x0[i] + delta[i];
  CHECK(bitwise_equal(x.data(), sum.data(), x.size()));  // residual stream updated
  CHECK(max_abs_diff(out.data(), expected_norm(sum).data(), out.size()) < 1e-5f);
}

TEST_CASE("swiglu is silu(gate) * up, in place too") {
  CpuBackend backend(cpu_options(2));
  for (std::int64_t n : {7, 100000}) {
    auto gate = random_floats(static_cast<std::size_t>(n), 4, 3.0f);
    const auto up = random_floats(gate.size(), 5);
    std::vector<float> expected(gate.size());
    for (std::size_t i = 0; i < gate.size(); ++i) {
      const double g = gate[i];
      expected[i] = static_cast<float>(g / (1 + std::exp(-g)) * up[i]);
    }
    backend.swiglu(gate.data(), up.data(), n, gate.data());
    CHECK(max_abs_diff(gate.data(), expected.data(), gate.size()) < 1e-5f);
  }
}

TEST_CASE("embed gathers rows and refuses tokens outside the vocabulary") {
  CpuBackend backend(cpu_options(1));
  const auto table_data = random_floats(10 * 6, 6);
  auto table = backend.upload_weight(f32_tensor("token_embd.weight", table_data, {10, 6}));
  const std::vector<std::int32_t> tokens{3, 0, 9, 3};
  std::vector<float> out(tokens.size() * 6);
  backend.embed(*table, *positions_step(backend, {0, 1, 2, 3}, tokens), out.data());
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    CHECK(bitwise_equal(out.data() + i * 6, table_data.data() + tokens[i] * 6, 6));
  }
  const std::vector<std::int32_t> bad{10};
  CHECK_THROWS_AS(backend.embed(*table, *positions_step(backend, {0}, bad), out.data()), Error);
}

TEST_CASE("upload_weight dequantises other dtypes and refuses shapes that do not fit") {
  CpuBackend backend(cpu_options(2));
  // bf16 is the upper half of an f32: 1.5 = 0x3FC0, -2 = 0xC000.
  const std::vector<std::uint16_t> bf16{0x3FC0, 0xC000, 0x0000, 0x3F80};
  TensorRef t;
  t.name = "w";
  t.dtype = DType::kBF16;
  t.shape = {2, 2};
  t.bytes = std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(bf16.data()), 8);
  auto w = backend.upload_weight(t);
  CHECK(w->rows() == 2);
  CHECK(w->cols() == 2);
  CHECK(w->source_dtype() == DType::kBF16);
  const std::vector<float> x{1.0f, 1.0f};
  std::vector<float> y(2);
  backend.gemm(x.data(), 1, *w, y.data());
  CHECK(y[0] == -0.5f);
  CHECK(y[1] == 1.0f);

  t.shape = {3, 2};  // claims more elements than the bytes hold
  CHECK_THROWS_AS(backend.upload_weight(t), Error);
}

TEST_CASE("memory info counts live weights and buffers") {
  CpuBackend backend(cpu_options(1));
  const auto before = backend.memory_info();
  CHECK(before.total_bytes > 0);
  {
    auto buffer = backend.allocate(4096);
    const auto data = random_floats(256, 7);
    auto w = backend.upload_weight(f32_tensor("w", data, {16, 16}));
    const auto during = backend.memory_info();
    CHECK(during.buffer_bytes == before.buffer_bytes + 4096);
    CHECK(during.weight_bytes == before.weight_bytes + 1024);
    // Buffers come zero-filled.
    const float* f = buffer->floats();
    bool zero = true;
    for (int i = 0; i < 1024; ++i)
      zero = zero && f[i] == 0.0f;
    CHECK(zero);
  }
  const auto after = backend.memory_info();
  CHECK(after.buffer_bytes == before.buffer_bytes);
  CHECK(after.weight_bytes == before.weight_bytes);
  CHECK(backend.capabilities().threads == 1);
  CHECK(backend.name() == "cpu");
}
