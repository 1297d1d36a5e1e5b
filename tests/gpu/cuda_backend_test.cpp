// Each CUDA kernel against its CPU twin (the CPU backend's op) on fresh random inputs.
// Skipped without a GPU; built everywhere.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <numeric>

#include "common/status.h"
#include "kernels/rope_config.h"
#include "tests/gpu/cuda_twin.h"

using namespace conveyor;
using namespace conveyor::testing;

namespace {

// f32 weights: the same f32 arithmetic in another order. bf16 weights: the GPU also
// rounds the input rows to bf16 (relative error about 2^-9 per product).
constexpr double kF32Bound = 1e-5;
constexpr double kBf16Bound = 1e-2;

struct Both {
  std::unique_ptr<Backend> cpu = cpu_backend();
  std::unique_ptr<Backend> gpu = gpu_backend();
};

double gemm_error(Both& b, DType dtype, std::int64_t m, std::int64_t n, std::int64_t k,
                  bool with_bias, bool accumulate) {
  const OwnedTensor w = random_tensor(dtype, {n, k});
  const OwnedTensor bias = f32_tensor(random_floats(static_cast<std::size_t>(n)), {n});
  const auto x = random_floats(static_cast<std::size_t>(m * k));
  const auto y0 = random_floats(static_cast<std::size_t>(m * n));
  std::vector<float> results[2];
  Backend* backends[2] = {b.cpu.get(), b.gpu.get()};
  for (int i = 0; i < 2; ++i) {
    Backend& be = *backends[i];
    auto wb = be.upload_weight(w.ref);
    auto bb = be.upload_weight(bias.ref);
    auto xb = upload(be, x);
    auto yb = accumulate ? upload(be, y0) : poisoned(be, y0.size());
    be.gemm(xb->floats(), m, *wb, yb->floats(), {with_bias ? bb.get() : nullptr, accumulate});
    results[i] = download(be, *yb, y0.size());
  }
  return relative_error(results[1], results[0]);
}

}  // namespace

TEST_CASE("cuda gemm matches the CPU twin for f32, bf16 and dequantised weights" *
          doctest::skip(no_gpu())) {
  Both b;
  struct Shape {
    std::int64_t m, n, k;
  };
  for (const Shape s : {Shape{1, 64, 64}, Shape{7, 96, 160}, Shape{37, 576, 192},
                        Shape{300, 256, 512}, Shape{513, 1536, 576}}) {
    CAPTURE(s.m);
    CAPTURE(s.n);
    CAPTURE(s.k);
    CHECK(gemm_error(b, DType::kF32, s.m, s.n, s.k, false, false) < kF32Bound);
    CHECK(gemm_error(b, DType::kF32, s.m, s.n, s.k, true, true) < kF32Bound);
    CHECK(gemm_error(b, DType::kBF16, s.m, s.n, s.k, false, false) < kBf16Bound);
    CHECK(gemm_error(b, DType::kBF16, s.m, s.n, s.k, true, true) < kBf16Bound);
    CHECK(gemm_error(b, DType::kF16, s.m, s.n, s.k, false, false) < kBf16Bound);
  }
  // Block-quantised GGUF types are dequantised to bf16 at load (k a multiple of 256).
  for (const DType dtype : {DType::kQ8_0, DType::kQ4_0, DType::kQ4_1, DType::kQ4_K, DType::kQ6_K}) {
    CAPTURE(dtype_name(dtype));
    CHECK(gemm_error(b, dtype, 33, 320, 512, false, false) < kBf16Bound);
  }
  // S24_F16 (2:4 sparse) runs as a dense matrix, its CPU twin from the compressed panels.
  CHECK(gemm_error(b, DType::kS24_F16, 33, 320, 512, false, false) < kBf16Bound);
  CHECK(gemm_error(b, DType::kS24_F16, 33, 320, 512, true, true) < kBf16Bound);
}

TEST_CASE("cuda products of one input convert or quantise it once, and see every write to it" *
          doctest::skip(no_gpu())) {
  // q, k and v (and gate and up) are products of one input in a row, which the backend
  // converts to bf16 (or quantises to E4M3) once. Each product below must equal the CPU's on the
  // input as it is then: after the same input again, after a copy into it, after another product
  // wrote it, and after another op (the residual add of rmsnorm) wrote it.
  Both b;
  constexpr std::int64_t m = 40;
  constexpr std::int64_t k = 256;
  // bf16 weights convert the input to bf16; FP8 weights quantise it to E4M3 per row.
  for (const DType dtype : {DType::kBF16, DType::kF8_R}) {
    CAPTURE(dtype_name(dtype));
    const OwnedTensor w1 = random_tensor(dtype, {k, k});
    const OwnedTensor w2 = random_tensor(dtype, {96, k});
    const OwnedTensor norm = f32_tensor(random_floats(static_cast<std::size_t>(k)), {k});
    const auto x_first = random_floats(static_cast<std::size_t>(m * k));
    const auto x_second = random_floats(static_cast<std::size_t>(m * k));
    std::vector<std::vector<float>> results[2];
    Backend* backends[2] = {b.cpu.get(), b.gpu.get()};
    for (int i = 0; i < 2; ++i) {
      Backend& be = *backends[i];
      auto square = be.upload_weight(w1.ref);
      auto narrow = be.upload_weight(w2.ref);
      auto norm_weight = be.upload_weight(norm.ref);
      auto x = upload(be, x_first);
      auto y = poisoned(be, static_cast<std::size_t>(m * k));
      auto z = poisoned(be, static_cast<std::size_t>(m * 96));
      auto u = poisoned(be, static_cast<std::size_t>(m * k));
      auto keep = [&](BackendBuffer& buffer, std::int64_t cols) {
        results[i].push_back(download(be, buffer, static_cast<std::size_t>(m * cols)));
      };
      be.gemm(x->floats(), m, *square, y->floats());
      keep(*y, k);
      be.gemm(x->floats(), m, *narrow, z->floats());  // the same input again
      keep(*z, 96);
      be.copy_from_host(x->data(), x_second.data(), x_second.size() * 4);
      be.gemm(x->floats(), m, *narrow, z->floats());  // after a copy into it
      keep(*z, 96);
      be.gemm(y->floats(), m, *square, x->floats());  // another product's output
      be.gemm(x->floats(), m, *narrow, z->floats());
      keep(*z, 96);
      be.rmsnorm(x->floats(), y->floats(), m, *norm_weight, 1e-5f, u->floats());  // x += y
      be.gemm(x->floats(), m, *narrow, z->floats());
      keep(*z, 96);
    }
    REQUIRE(results[0].size() == results[1].size());
    for (std::size_t r = 0; r < results[0].size(); ++r) {
      CAPTURE(r);
      CHECK(relative_error(results[1][r], results[0][r]) < kBf16Bound);
    }
  }
}

TEST_CASE("cuda feed-forward block matches the CPU twin, in bf16 and through the default" *
          doctest::skip(no_gpu())) {
  // bf16 weights take the CUDA backend's own path (bf16 products and swiglu between), and
  // so do FP8 weights (bf16 products, their swiglu quantised for the down product); f16 and
  // f32 weights the default (gemm, gemm, swiglu, gemm). All add into `out`.
  // FP8: the CPU quantises the f32 intermediate, the GPU the same rounded through bf16,
  // which moves about 3% of its E4M3 codes by one step (a sixteenth): about 1% of the
  // output.
  constexpr double kFp8Bound = 3e-2;
  Both b;
  struct Shape {
    std::int64_t m, hidden, ff;
  };
  for (const DType dtype : {DType::kBF16, DType::kF8_R, DType::kF16, DType::kF32}) {
    double largest = 0;
    for (const Shape sh : {Shape{1, 64, 256}, Shape{37, 256, 704}, Shape{300, 576, 1536}}) {
      CAPTURE(dtype_name(dtype));
      CAPTURE(sh.m);
      CAPTURE(sh.ff);
      const OwnedTensor gate = random_tensor(dtype, {sh.ff, sh.hidden});
      const OwnedTensor up = random_tensor(dtype, {sh.ff, sh.hidden});
      const OwnedTensor down = random_tensor(dtype, {sh.hidden, sh.ff});
      const auto x = random_floats(static_cast<std::size_t>(sh.m * sh.hidden));
      const auto out0 = random_floats(static_cast<std::size_t>(sh.m * sh.hidden));
      std::vector<float> results[2];
      Backend* backends[2] = {b.cpu.get(), b.gpu.get()};
      for (int i = 0; i < 2; ++i) {
        Backend& be = *backends[i];
        auto g = be.upload_weight(gate.ref);
        auto u = be.upload_weight(up.ref);
        auto d = be.upload_weight(down.ref);
        auto xb = upload(be, x);
        auto out = upload(be, out0);
        auto gate_work = poisoned(be, static_cast<std::size_t>(sh.m * sh.ff));
        auto up_work = poisoned(be, static_cast<std::size_t>(sh.m * sh.ff));
        be.swiglu_ffn(xb->floats(), sh.m, *g, *u, *d, gate_work->floats(), up_work->floats(),
                      out->floats());
        results[i] = download(be, *out, out0.size());
      }
      const double bound = dtype == DType::kF32    ? kF32Bound
                           : dtype == DType::kF8_R ? kFp8Bound
                                                   : kBf16Bound;
      const double error = relative_error(results[1], results[0]);
      largest = std::max(largest, error);
      CHECK(error < bound);
    }
    MESSAGE("feed-forward block, " << std::string(dtype_name(dtype))
                                   << " weights: largest relative error against the CPU "
                                   << largest);
  }
}

TEST_CASE("cuda W8A16, W4A16 and W8A8 GEMMs from the compressed weights match the CPU twin" *
          doctest::skip(no_gpu())) {
  // The CPU computes from the same compressed form in f32. The GPU rounds each input row
  // to f16 (and q4's dequantised values, as dequantising at load does): about 2^-12
  // relative per product. FP8: both sides quantise x per row alike and sum exact
  // products, in another order and, on the tensor cores, with partial sums narrower
  // than f32 between their promotions.
  constexpr double kQuantBound = 2e-3;
  constexpr double kFp8Bound = 5e-3;
  Both b;
  struct Shape {
    std::int64_t m, n, k;
  };
  // m from one row to past the largest that quant_gemm takes (256; then slabs of W
  // dequantised for cuBLASLt); n not a multiple of the 64-row tile; few output tiles
  // (split over k) and many; q8 with k not a multiple of the 128-wide k tile.
  for (const Shape s : {Shape{1, 64, 128}, Shape{5, 200, 512}, Shape{16, 1000, 4096},
                        Shape{17, 64, 1024}, Shape{33, 320, 512}, Shape{64, 2048, 1024},
                        Shape{200, 96, 256}, Shape{300, 320, 512}, Shape{700, 132, 384}}) {
    CAPTURE(s.m);
    CAPTURE(s.n);
    CAPTURE(s.k);
    for (const DType dtype : {DType::kQ4_G128, DType::kQ8_R}) {
      CAPTURE(dtype_name(dtype));
      CHECK(gemm_error(b, dtype, s.m, s.n, s.k, false, false) < kQuantBound);
      CHECK(gemm_error(b, dtype, s.m, s.n, s.k, true, true) < kQuantBound);
    }
    CHECK(gemm_error(b, DType::kF8_R, s.m, s.n, s.k, false, false) < kFp8Bound);
    CHECK(gemm_error(b, DType::kF8_R, s.m, s.n, s.k, true, true) < kFp8Bound);
  }
  for (const std::int64_t m : {3, 40, 400}) {
    CAPTURE(m);
    CHECK(gemm_error(b, DType::kQ8_R, m, 100, 576, true, true) < kQuantBound);
  }
}

TEST_CASE("cuda rmsnorm, with and without the residual add, matches the CPU twin" *
          doctest::skip(no_gpu())) {
  Both b;
  for (const std::int64_t cols : {64, 576, 4096}) {
    const std::int64_t rows = 1 + static_cast<std::int64_t>(rng()() % 40);
    const auto x = random_floats(static_cast<std::size_t>(rows * cols), 3.0f);
    const auto add = random_floats(x.size());
    const OwnedTensor weight = f32_tensor(random_floats(static_cast<std::size_t>(cols)), {cols});
    for (const bool residual : {false, true}) {
      std::vector<float> out[2];
      std::vector<float> x_after[2];
      Backend* backends[2] = {b.cpu.get(), b.gpu.get()};
      for (int i = 0; i < 2; ++i) {
        auto w = backends[i]->upload_weight(weight.ref);
        auto xb = upload(*backends[i], x);
        auto ab = upload(*backends[i], add);
        auto ob = poisoned(*backends[i], x.size());
        backends[i]->rmsnorm(xb->floats(), residual ? ab->floats() : nullptr, rows, *w, 1e-5f,
                             ob->floats());
        out[i] = download(*backends[i], *ob, x.size());
        x_after[i] = download(*backends[i], *xb, x.size());
      }
      CHECK(relative_error(out[1], out[0]) < 1e-6);
      CHECK(relative_error(x_after[1], x_after[0]) < 1e-7);
    }
  }
}

TEST_CASE("cuda swiglu matches the CPU twin, in place too" * doctest::skip(no_gpu())) {
  Both b;
  const std::size_t n = 100003;
  const auto gate = random_floats(n, 6.0f);
  const auto up = random_floats(n, 2.0f);
  std::vector<float> out[2];
  Backend* backends[2] = {b.cpu.get(), b.gpu.get()};
  for (int i = 0; i < 2; ++i) {
    auto g = upload(*backends[i], gate);
    auto u = upload(*backends[i], up);
    backends[i]->swiglu(g->floats(), u->floats(), static_cast<std::int64_t>(n), g->floats());
    out[i] = download(*backends[i], *g, n);
  }
  CHECK(relative_error(out[1], out[0]) < 1e-6);
}

namespace {

// K/V cache contents in backend memory: f32, or bf16 on the GPU.
std::unique_ptr<BackendBuffer> upload_cache(Backend& b, const std::vector<float>& values,
                                            DType dtype) {
  if (dtype == DType::kF32) return upload(b, values);
  std::vector<std::uint16_t> bits(values.size());
  for (std::size_t i = 0; i < values.size(); ++i)
    bits[i] = to_bf16_bits(values[i]);
  auto buffer = b.allocate(bits.size() * 2);
  b.copy_from_host(buffer->data(), bits.data(), bits.size() * 2);
  return buffer;
}

std::vector<float> download_cache(Backend& b, BackendBuffer& buffer, std::size_t n, DType dtype) {
  if (dtype == DType::kF32) return download(b, buffer, n);
  std::vector<std::uint16_t> bits(n);
  b.copy_to_host(bits.data(), buffer.data(), n * 2);
  std::vector<float> out(n);
  for (std::size_t i = 0; i < n; ++i)
    out[i] = from_bf16_bits(bits[i]);
  return out;
}

}  // namespace

// The bf16 cache's twin is the CPU's f32 attention over the same values rounded to
// bf16 (inputs are drawn bf16-exact, so storing them rounds nothing).
TEST_CASE("cuda store_kv and paged attention match the CPU twin, f32 and bf16 K/V" *
          doctest::skip(no_gpu())) {
  Both b;
  struct Heads {
    std::int64_t heads, kv_heads, head_dim, window, block_size;
  };
  // Every kernel: the tensor cores' (bf16 at head_dim 64, 128, 256) with its default and
  // with two stages; the CUDA cores' tiled one with two and with four passes of loads in
  // flight; the general one (head_dim 16 and 80, and f32 K/V).
  auto gpu_two_stages = gpu_backend_with("CONVEYOR_CUDA_ATTENTION_STAGES", "2");
  auto gpu_simt = gpu_backend_with("CONVEYOR_CUDA_ATTENTION", "simt");
  setenv("CONVEYOR_CUDA_ATTENTION_PASSES", "4", 1);
  auto gpu_simt_four_passes = gpu_backend_with("CONVEYOR_CUDA_ATTENTION", "simt");
  unsetenv("CONVEYOR_CUDA_ATTENTION_PASSES");
  double largest_error = 0;
  for (const DType dtype : {DType::kF32, DType::kBF16}) {
    for (Backend* gpu :
         {b.gpu.get(), gpu_two_stages.get(), gpu_simt.get(), gpu_simt_four_passes.get()}) {
      for (const Heads h :
           {Heads{4, 2, 16, 0, 16}, Heads{9, 3, 64, 0, 16}, Heads{32, 8, 128, 0, 16},
            Heads{8, 8, 64, 0, 32}, Heads{16, 2, 128, 50, 16}, Heads{8, 1, 256, 0, 16},
            Heads{6, 2, 80, 0, 16}}) {
        CAPTURE(dtype_name(dtype));
        CAPTURE(h.heads);
        CAPTURE(h.kv_heads);
        CAPTURE(h.head_dim);
        CAPTURE(h.window);
        const std::int64_t kv_dim = h.kv_heads * h.head_dim;
        const std::int64_t num_blocks = 512;
        const RandomStep step = random_step(12, h.block_size, num_blocks, 1000);
        const std::int64_t tokens = step.layout.num_tokens();
        const auto cache_floats = static_cast<std::size_t>(num_blocks * h.block_size * kv_dim);
        const auto k_cache = bf16_rounded(random_floats(cache_floats));
        const auto v_cache = bf16_rounded(random_floats(cache_floats));
        const auto q = random_floats(static_cast<std::size_t>(tokens * h.heads * h.head_dim), 2.0f);
        const auto k = bf16_rounded(random_floats(static_cast<std::size_t>(tokens * kv_dim)));
        const auto v = bf16_rounded(random_floats(static_cast<std::size_t>(tokens * kv_dim)));
        AttentionConfig config;
        config.num_heads = h.heads;
        config.num_kv_heads = h.kv_heads;
        config.head_dim = h.head_dim;
        config.scale = 1.0f / std::sqrt(static_cast<float>(h.head_dim));
        config.sliding_window = h.window;
        std::vector<float> out[2];
        std::vector<float> k_after[2];
        std::vector<float> v_after[2];
        Backend* backends[2] = {b.cpu.get(), gpu};
        const DType dtypes[2] = {DType::kF32, dtype};
        for (int i = 0; i < 2; ++i) {
          Backend& be = *backends[i];
          auto kc = upload_cache(be, k_cache, dtypes[i]);
          auto vc = upload_cache(be, v_cache, dtypes[i]);
          auto qb = upload(be, q);
          auto kb = upload(be, k);
          auto vb = upload(be, v);
          auto ob = poisoned(be, q.size());
          const KvLayerView layer{kc->data(),   vc->data(), num_blocks,
                                  h.block_size, kv_dim,     dtypes[i]};
          auto prepared = be.prepare_step(step.layout);
          be.store_kv(kb->floats(), vb->floats(), *prepared, layer);
          be.attention(qb->floats(), layer, *prepared, config, ob->floats());
          out[i] = download(be, *ob, q.size());
          k_after[i] = download_cache(be, *kc, cache_floats, dtypes[i]);
          v_after[i] = download_cache(be, *vc, cache_floats, dtypes[i]);
        }
        CHECK(k_after[1] == k_after[0]);
        CHECK(v_after[1] == v_after[0]);
        const double error = relative_error(out[1], out[0]);
        largest_error = std::max(largest_error, error);
        CHECK(error < 1e-5);
      }
    }
  }
  MESSAGE("paged attention, largest relative error against the CPU: " << largest_error);
}

TEST_CASE("cuda rope matches the CPU twin for both pairings" * doctest::skip(no_gpu())) {
  Both b;
  for (const RopePairing pairing : {RopePairing::kHalfSplit, RopePairing::kInterleaved}) {
    RopeConfig config;
    config.num_heads = 8;
    config.num_kv_heads = 2;
    config.head_dim = 64;
    config.pairing = pairing;
    for (std::int64_t i = 0; i < 32; ++i)
      config.inv_freq.push_back(
          static_cast<float>(std::pow(500000.0, -2.0 * static_cast<double>(i) / 64.0)));
    const RandomStep step = random_step(10, 16, 512, 1000);
    const std::int64_t tokens = step.layout.num_tokens();
    const auto q = random_floats(static_cast<std::size_t>(tokens * 8 * 64));
    const auto k = random_floats(static_cast<std::size_t>(tokens * 2 * 64));
    std::vector<float> q_out[2];
    std::vector<float> k_out[2];
    Backend* backends[2] = {b.cpu.get(), b.gpu.get()};
    for (int i = 0; i < 2; ++i) {
      auto qb = upload(*backends[i], q);
      auto kb = upload(*backends[i], k);
      auto prepared = backends[i]->prepare_step(step.layout);
      backends[i]->rope(qb->floats(), kb->floats(), *prepared, config);
      q_out[i] = download(*backends[i], *qb, q.size());
      k_out[i] = download(*backends[i], *kb, k.size());
    }
    CHECK(relative_error(q_out[1], q_out[0]) < 1e-6);
    CHECK(relative_error(k_out[1], k_out[0]) < 1e-6);
  }
}

TEST_CASE("cuda embed and logits match the CPU twin" * doctest::skip(no_gpu())) {
  Both b;
  const std::int64_t vocab = 1000;
  const std::int64_t hidden = 192;
  for (const DType dtype :
       {DType::kF32, DType::kBF16, DType::kQ8_0, DType::kQ8_R, DType::kQ4_G128, DType::kF8_R}) {
    CAPTURE(dtype_name(dtype));
    const bool compressed =
        dtype == DType::kQ8_R || dtype == DType::kQ4_G128 || dtype == DType::kF8_R;
    const std::int64_t width = dtype == DType::kQ8_0 || dtype == DType::kQ4_G128 ? 256 : hidden;
    const OwnedTensor table = random_tensor(dtype, {vocab, width});
    const OwnedTensor norm = f32_tensor(random_floats(static_cast<std::size_t>(width)), {width});
    const RandomStep step = random_step(9, 16, 512, static_cast<std::int32_t>(vocab));
    const std::int64_t tokens = step.layout.num_tokens();
    const auto rows = static_cast<std::int64_t>(step.layout.logit_rows.size());
    std::vector<float> embedded[2];
    std::vector<float> logits[2];
    Backend* backends[2] = {b.cpu.get(), b.gpu.get()};
    for (int i = 0; i < 2; ++i) {
      auto t = backends[i]->upload_weight(table.ref);
      auto n = backends[i]->upload_weight(norm.ref);
      auto prepared = backends[i]->prepare_step(step.layout);
      auto e = poisoned(*backends[i], static_cast<std::size_t>(tokens * width));
      backends[i]->embed(*t, *prepared, e->floats());
      embedded[i] = download(*backends[i], *e, static_cast<std::size_t>(tokens * width));
      auto l = poisoned(*backends[i], static_cast<std::size_t>(rows * vocab));
      backends[i]->logits(e->floats(), *prepared, *n, 1e-5f, *t, l->floats());
      logits[i] = download(*backends[i], *l, static_cast<std::size_t>(rows * vocab));
    }
    // A bf16 copy of a quantised table holds its values exactly only where they fit bf16;
    // a table kept compressed is dequantised as the CPU does it.
    CHECK(relative_error(embedded[1], embedded[0]) < (dtype == DType::kQ8_0 ? 4e-3 : 1e-7));
    CHECK(relative_error(logits[1], logits[0]) < (dtype == DType::kF32 ? kF32Bound
                                                  : compressed         ? 2e-3
                                                                       : kBf16Bound));
  }
}

TEST_CASE("cuda backend refuses bad input with typed errors and keeps working" *
          doctest::skip(no_gpu())) {
  auto gpu = gpu_backend(0.05);
  const OwnedTensor table = random_tensor(DType::kF32, {100, 64});
  auto t = gpu->upload_weight(table.ref);
  StepLayout layout;
  layout.tokens = {5, 100};
  layout.positions = {0, 1};
  layout.slots = {0, 1};
  auto step = gpu->prepare_step(layout);
  auto out = gpu->allocate(2 * 64 * 4);
  try {
    gpu->embed(*t, *step, out->floats());
    FAIL("a token outside the vocabulary was embedded");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::kInvalidArgument);
  }
  auto k = gpu->allocate(64 * 4);
  const KvLayerView layer{k->floats(), k->floats(), 1, 1, 64};
  CHECK_THROWS_AS(gpu->store_kv(out->floats(), out->floats(), *step, layer), Error);
  // More than the pool holds: kResourceExhausted, and the backend still works after.
  try {
    auto huge = gpu->allocate(gpu->memory_info().total_bytes + 1);
    FAIL("the pool handed out more than it holds");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::kResourceExhausted);
  }
  layout.tokens = {5, 99};
  auto good = gpu->prepare_step(layout);
  gpu->embed(*t, *good, out->floats());
  std::vector<float> host(2 * 64);
  gpu->copy_to_host(host.data(), out->data(), host.size() * 4);
  CHECK(std::equal(host.begin(), host.begin() + 64,
                   reinterpret_cast<const float*>(table.bytes.data()) + 5 * 64));
}

TEST_CASE("cuda argmax matches the CPU twin on ties, NaN, -inf and +inf" *
          doctest::skip(no_gpu())) {
  Both b;
  const std::int64_t vocab = 128256;
  const std::int64_t rows = 9;
  auto logits = random_floats(static_cast<std::size_t>(rows * vocab), 20.0f);
  auto at = [&](std::int64_t r, std::int64_t i) -> float& {
    return logits[static_cast<std::size_t>(r * vocab + i)];
  };
  at(1, 70000) = 50.0f;  // a tie: the lower index wins
  at(1, 3) = 50.0f;
  at(2, 5) = std::nanf("");  // NaN is never chosen
  at(3, vocab - 1) = INFINITY;
  for (std::int64_t i = 0; i < vocab; ++i) {
    at(4, i) = -INFINITY;  // nothing to choose
    at(5, i) = i % 2 == 0 ? std::nanf("") : -INFINITY;
    at(6, i) = 7.0f;  // all equal: index 0
  }
  at(7, vocab - 1) = 1e30f;
  std::vector<std::int32_t> chosen[2];
  Backend* backends[2] = {b.cpu.get(), b.gpu.get()};
  for (int i = 0; i < 2; ++i) {
    auto buffer = upload(*backends[i], logits);
    chosen[i].assign(static_cast<std::size_t>(rows), -7);
    backends[i]->argmax(buffer->floats(), rows, vocab, chosen[i].data());
  }
  CHECK(chosen[1] == chosen[0]);
  CHECK(chosen[0][1] == 3);
  CHECK(chosen[0][3] == vocab - 1);
  CHECK(chosen[0][4] == -1);
  CHECK(chosen[0][5] == -1);
  CHECK(chosen[0][6] == 0);
  CHECK(chosen[0][7] == vocab - 1);
}

TEST_CASE("cuda f16 GEMM inputs saturate at the f16 range instead of overflowing" *
          doctest::skip(no_gpu())) {
  auto gpu = gpu_backend(0.05);
  const OwnedTensor w = random_tensor(DType::kF16, {8, 64});
  auto wb = gpu->upload_weight(w.ref);
  auto x = random_floats(2 * 64);
  x[3] = 1e6f;  // beyond f16's 65504
  x[70] = -1e9f;
  auto xb = upload(*gpu, x);
  auto yb = poisoned(*gpu, 2 * 8);
  gpu->gemm(xb->floats(), 2, *wb, yb->floats());
  const auto y = download(*gpu, *yb, 2 * 8);
  CHECK(std::all_of(y.begin(), y.end(), [](float v) { return std::isfinite(v); }));
}
