// The quantised-weight GEMM against the f32 path on the same weights dequantised at
// load: the two must agree bit for bit, on every instruction set and thread count, so
// that keeping weights quantised changes no generated token.
#include <doctest/doctest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "common/dequantize.h"
#include "kernels/cpu/cpu_backend.h"
#include "tests/cpu/cpu_test_util.h"

using namespace conveyor;
using namespace conveyor::testing;

namespace {

// Byte offsets of the f16 scale fields in one block of each type.
std::vector<int> half_offsets(DType type) {
  switch (type) {
    case DType::kQ4_0:
    case DType::kQ8_0:
      return {0};
    case DType::kQ4_1:
    case DType::kQ4_K:
    case DType::kQ4_G128:
      return {0, 2};
    case DType::kQ6_K:
      return {208};
    default:
      return {};
  }
}

// Random blocks whose f16 scales are finite and of a realistic size (2^-8 .. 2^-1, either
// sign), every other byte random.
std::vector<std::uint8_t> random_blocks(DType type, std::int64_t elements, std::uint32_t seed) {
  const DTypeLayout layout = dtype_layout(type);
  const std::int64_t blocks = elements / layout.block_elements;
  std::vector<std::uint8_t> bytes(static_cast<std::size_t>(blocks * layout.block_bytes));
  std::mt19937 rng(seed);
  for (auto& b : bytes)
    b = static_cast<std::uint8_t>(rng());
  std::uniform_int_distribution<int> exponent(7, 14);
  for (std::int64_t b = 0; b < blocks; ++b) {
    for (int offset : half_offsets(type)) {
      const auto half = static_cast<std::uint16_t>(
          (rng() & 0x8000u) | (static_cast<unsigned>(exponent(rng)) << 10) | (rng() & 0x3FFu));
      std::uint8_t* p = bytes.data() + b * layout.block_bytes + offset;
      p[0] = static_cast<std::uint8_t>(half & 0xFF);
      p[1] = static_cast<std::uint8_t>(half >> 8);
    }
  }
  return bytes;
}

TensorRef quant_tensor(DType type, const std::vector<std::uint8_t>& bytes, std::int64_t n,
                       std::int64_t k) {
  static const std::string kName = "w";
  TensorRef t;
  t.name = kName;
  t.dtype = type;
  t.shape = {n, k};
  t.bytes = std::span<const std::uint8_t>(bytes.data(), bytes.size());
  return t;
}

CpuBackendOptions options(int threads, CpuIsa isa, bool dequantize) {
  CpuBackendOptions o = cpu_options(threads, isa);
  o.dequantize_weights = dequantize;
  return o;
}

struct Shape {
  std::int64_t n, k;
};

std::vector<Shape> shapes_for(DType type) {
  // k = 8192 makes a panel larger than the per-thread tile budget allows four of.
  if (dtype_layout(type).block_elements == 256) {
    return {{1, 256}, {33, 512}, {70, 768}, {40, 8192}};
  }
  if (dtype_layout(type).block_elements == 128) {
    return {{1, 128}, {16, 384}, {33, 640}, {70, 256}, {40, 8192}};
  }
  return {{1, 32}, {16, 96}, {33, 160}, {70, 576}, {200, 64}, {40, 8192}};
}

const DType kQuantTypes[] = {DType::kQ4_0, DType::kQ4_1, DType::kQ8_0,
                             DType::kQ4_K, DType::kQ6_K, DType::kQ4_G128};

}  // namespace

TEST_CASE("quantised gemm is bit-identical to the f32 path on the dequantised weights") {
  for (CpuIsa isa : supported_isas()) {
    CAPTURE(cpu_isa_name(isa));
    CpuBackend quant(options(2, isa, false));
    CpuBackend f32(options(2, isa, true));
    CHECK(quant.capabilities().quantized_weights);
    CHECK_FALSE(f32.capabilities().quantized_weights);
    for (DType type : kQuantTypes) {
      CAPTURE(dtype_name(type));
      for (const Shape& s : shapes_for(type)) {
        CAPTURE(s.n);
        CAPTURE(s.k);
        const auto bytes = random_blocks(type, s.n * s.k, static_cast<std::uint32_t>(s.n + s.k));
        const TensorRef tensor = quant_tensor(type, bytes, s.n, s.k);
        auto wq = quant.upload_weight(tensor);
        auto wf = f32.upload_weight(tensor);
        CHECK(wq->resident_bytes() * 3 < wf->resident_bytes());
        const auto b_data = random_floats(static_cast<std::size_t>(s.n), 9);
        auto bq = quant.upload_weight(f32_tensor("b", b_data, {s.n}));
        auto bf = f32.upload_weight(f32_tensor("b", b_data, {s.n}));
        for (std::int64_t m : {1, 2, 3, 4, 9, 17, 64}) {
          CAPTURE(m);
          const auto x = random_floats(static_cast<std::size_t>(m * s.k), 11);
          std::vector<float> yq(static_cast<std::size_t>(m * s.n));
          std::vector<float> yf(yq.size());
          quant.gemm(x.data(), m, *wq, yq.data());
          f32.gemm(x.data(), m, *wf, yf.data());
          CHECK(bitwise_equal(yq.data(), yf.data(), yq.size()));
          quant.gemm(x.data(), m, *wq, yq.data(), {.bias = bq.get(), .accumulate = true});
          f32.gemm(x.data(), m, *wf, yf.data(), {.bias = bf.get(), .accumulate = true});
          CHECK(bitwise_equal(yq.data(), yf.data(), yq.size()));
        }
      }
    }
  }
}

TEST_CASE("quantised gemm does not depend on thread count or batch split, bit for bit") {
  const std::int64_t n = 200, k = 512, m = 64;
  const auto x = random_floats(static_cast<std::size_t>(m * k), 12);
  for (DType type : kQuantTypes) {
    CAPTURE(dtype_name(type));
    const auto bytes = random_blocks(type, n * k, 13);
    const TensorRef tensor = quant_tensor(type, bytes, n, k);
    CpuBackend one(options(1, detect_cpu_isa(), false));
    CpuBackend two(options(2, detect_cpu_isa(), false));
    auto w1 = one.upload_weight(tensor);
    auto w2 = two.upload_weight(tensor);
    std::vector<float> y1(static_cast<std::size_t>(m * n));
    std::vector<float> y2(y1.size());
    one.gemm(x.data(), m, *w1, y1.data());
    two.gemm(x.data(), m, *w2, y2.data());
    CHECK(bitwise_equal(y1.data(), y2.data(), y1.size()));
    // Single rows (the fused path) give the rows of the full batch (the tiled path).
    for (std::int64_t row : {0, 17, 63}) {
      std::vector<float> part(static_cast<std::size_t>(n));
      two.gemm(x.data() + row * k, 1, *w2, part.data());
      CHECK(bitwise_equal(part.data(), y1.data() + row * n, part.size()));
    }
  }
}

TEST_CASE("embedding rows of a quantised table equal dequantize_row") {
  const std::int64_t n = 37, k = 512;
  for (DType type : kQuantTypes) {
    CAPTURE(dtype_name(type));
    const auto bytes = random_blocks(type, n * k, 14);
    CpuBackend backend(options(2, detect_cpu_isa(), false));
    auto table = backend.upload_weight(quant_tensor(type, bytes, n, k));
    const std::vector<std::int32_t> tokens{0, 15, 16, 36};
    auto step = positions_step(backend, {0, 1, 2, 3}, tokens);
    std::vector<float> out(tokens.size() * static_cast<std::size_t>(k));
    backend.embed(*table, *step, out.data());
    const auto row_bytes = static_cast<std::int64_t>(*dtype_bytes(type, k));
    std::vector<float> expected(static_cast<std::size_t>(k));
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      dequantize_row(type, bytes.data() + tokens[i] * row_bytes, expected.data(), k);
      CHECK(bitwise_equal(out.data() + i * static_cast<std::size_t>(k), expected.data(),
                          expected.size()));
    }
  }
}
