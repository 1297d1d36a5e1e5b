// 2:4 sparse weights (kS24_F16) on the CPU backend: kept compressed, and the GEMM from
// the compressed panels gives what cpu_sparse24_gemm.h guarantees: gemm_f32's values on
// the dequantised weight, and its bits unless both are zeros (skipping a zero product
// can only change the sign of a zero sum).
#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "common/dequantize.h"
#include "common/quant/prune_mask.h"
#include "common/quant/sparse24.h"
#include "common/status.h"
#include "kernels/cpu/cpu_backend.h"
#include "tests/cpu/cpu_test_util.h"

using namespace conveyor;
using namespace conveyor::testing;

namespace {

struct Shape {
  std::int64_t n, k;
};

// A random weight pruned 2:4 by magnitude, with a row of zeros (row 1, when there is
// one) and a few groups of fewer than two nonzeros, compressed.
quant::QuantizedTensor sparse_weight(const Shape& s, std::uint32_t seed) {
  auto w = random_floats(static_cast<std::size_t>(s.n * s.k), seed, 0.05f);
  quant::apply_prune_mask(w, quant::two_four_prune_mask(w, s.n, s.k));
  if (s.n > 1) {
    for (std::int64_t j = 0; j < s.k; ++j)
      w[static_cast<std::size_t>(s.k + j)] = 0;
  }
  for (std::size_t i = 0; i < w.size(); i += 37)
    w[i] = 0;
  return quant::quantize_sparse24(w, s.n, s.k);
}

// The guarantee: the same bits, or both zeros (of either sign).
bool same_unless_zero(const std::vector<float>& a, const std::vector<float>& b) {
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::memcmp(&a[i], &b[i], sizeof(float)) != 0 && !(a[i] == 0 && b[i] == 0)) return false;
  }
  return a.size() == b.size();
}

}  // namespace

TEST_CASE("S24_F16 weights give gemm_f32's results on the dequantised weights") {
  // k = 16: one chunk; n = 33, 70: partial panels; 40 x 4096: the tiled path's long k.
  const Shape shapes[] = {{1, 16}, {33, 48}, {70, 576}, {40, 4096}};
  for (CpuIsa isa : supported_isas()) {
    CAPTURE(cpu_isa_name(isa));
    CpuBackend backend(cpu_options(2, isa));
    for (const Shape& s : shapes) {
      CAPTURE(s.n);
      CAPTURE(s.k);
      const quant::QuantizedTensor q = sparse_weight(s, static_cast<std::uint32_t>(s.n + s.k));
      const std::vector<float> dense = dequantize_tensor(q.view("w"));
      auto ws = backend.upload_weight(q.view("w"));
      auto wf = backend.upload_weight(f32_tensor("w", dense, {s.n, s.k}));
      // Half the values as f32 plus 4 bytes of indices per 16 values: 9/16 of f32's bytes.
      CHECK(ws->resident_bytes() * 16 <= wf->resident_bytes() * 9);
      const auto b_data = random_floats(static_cast<std::size_t>(s.n), 9);
      auto bias = backend.upload_weight(f32_tensor("b", b_data, {s.n}));
      for (std::int64_t m : {1, 2, 3, 4, 5, 8, 9, 64}) {
        CAPTURE(m);
        const auto x = random_floats(static_cast<std::size_t>(m * s.k), 11);
        std::vector<float> ys(static_cast<std::size_t>(m * s.n));
        std::vector<float> yf(ys.size());
        backend.gemm(x.data(), m, *ws, ys.data());
        backend.gemm(x.data(), m, *wf, yf.data());
        CHECK(same_unless_zero(ys, yf));
        backend.gemm(x.data(), m, *ws, ys.data(), {.bias = bias.get(), .accumulate = true});
        backend.gemm(x.data(), m, *wf, yf.data(), {.bias = bias.get(), .accumulate = true});
        CHECK(same_unless_zero(ys, yf));
      }
    }
  }
}

TEST_CASE("S24_F16: the result does not depend on the thread count") {
  const Shape s{300, 576};
  const quant::QuantizedTensor q = sparse_weight(s, 4);
  std::vector<float> results[2];
  const int threads[2] = {1, 3};
  for (int i = 0; i < 2; ++i) {
    CpuBackend backend(cpu_options(threads[i]));
    auto w = backend.upload_weight(q.view("w"));
    for (std::int64_t m : {1, 4, 33}) {
      const auto x = random_floats(static_cast<std::size_t>(m * s.k), 6);
      std::vector<float> y(static_cast<std::size_t>(m * s.n));
      backend.gemm(x.data(), m, *w, y.data());
      results[i].insert(results[i].end(), y.begin(), y.end());
    }
  }
  CHECK(bitwise_equal(results[0].data(), results[1].data(), results[0].size()));
}

TEST_CASE("embedding rows of an S24_F16 table equal its dequantised rows") {
  const Shape s{37, 64};
  CpuBackend backend(cpu_options(2));
  const quant::QuantizedTensor q = sparse_weight(s, 14);
  const std::vector<float> dense = dequantize_tensor(q.view("w"));
  auto table = backend.upload_weight(q.view("w"));
  const std::vector<std::int32_t> tokens{0, 1, 15, 16, 36};
  auto step = positions_step(backend, {0, 1, 2, 3, 4}, tokens);
  std::vector<float> out(tokens.size() * static_cast<std::size_t>(s.k));
  backend.embed(*table, *step, out.data());
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    CAPTURE(i);
    CHECK(bitwise_equal(out.data() + i * static_cast<std::size_t>(s.k),
                        dense.data() + tokens[i] * s.k, static_cast<std::size_t>(s.k)));
  }
}

TEST_CASE("S24_F16 dequantised at load gives the same results") {
  const Shape s{48, 512};
  const quant::QuantizedTensor q = sparse_weight(s, 3);
  CpuBackend sparse(cpu_options(2));
  CpuBackendOptions dequantize = cpu_options(2);
  dequantize.dequantize_weights = true;
  CpuBackend dense(dequantize);
  auto a = sparse.upload_weight(q.view("w"));
  auto b = dense.upload_weight(q.view("w"));
  CHECK(a->resident_bytes() * 16 <= b->resident_bytes() * 9);
  for (std::int64_t m : {1, 20}) {
    const auto x = random_floats(static_cast<std::size_t>(m * s.k), 5);
    std::vector<float> ya(static_cast<std::size_t>(m * s.n)), yb(ya.size());
    sparse.gemm(x.data(), m, *a, ya.data());
    dense.gemm(x.data(), m, *b, yb.data());
    CHECK(same_unless_zero(ya, yb));
  }
}

TEST_CASE("S24_F16 blocks whose positions are not ascending are refused at upload") {
  const quant::QuantizedTensor q = sparse_weight({3, 32}, 1);
  std::vector<std::uint8_t> bytes = q.bytes;
  bytes[(2 * 2 + 1) * 18 + 16] = 0x00;  // row 2, block 1: groups 0 and 1 keep (0, 0)
  TensorRef t = q.view("w");
  t.bytes = bytes;
  for (bool dequantize : {false, true}) {
    CpuBackendOptions options = cpu_options(1);
    options.dequantize_weights = dequantize;
    CpuBackend backend(options);
    try {
      backend.upload_weight(t);
      FAIL("accepted");
    } catch (const Error& e) {
      CHECK(e.code() == ErrorCode::kMalformed);
      CHECK(std::string(e.what()).find("block 1 of row 2") != std::string::npos);
    }
  }
}
