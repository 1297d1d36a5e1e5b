// The FP8 K/V cache on the CUDA backend against its CPU twin: store_kv must quantise each
// head's row of each new token exactly as quant::quantize_rows_e4m3 does (codes and
// scales bit for bit), and attention over the codes must equal the CPU's f32 attention
// over the dequantised values (e4m3(code) * scale). Skipped without a GPU; built
// everywhere.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "common/fp8.h"
#include "common/quant/fp8_rows.h"
#include "common/status.h"
#include "tests/gpu/cuda_twin.h"

using namespace conveyor;
using namespace conveyor::testing;

namespace {

// A cache of `slots` rows of kv_dim values as E4M3 codes with a scale per head.
struct Fp8Rows {
  std::vector<std::uint8_t> codes;
  std::vector<float> scales;
};

// Each head's row of each position with its own scale.
Fp8Rows quantize(const std::vector<float>& rows, std::int64_t head_dim) {
  Fp8Rows q;
  q.codes.resize(rows.size());
  const auto heads = static_cast<std::int64_t>(rows.size()) / head_dim;
  q.scales.resize(static_cast<std::size_t>(heads));
  quant::quantize_rows_e4m3(rows.data(), heads, head_dim, q.codes.data(), q.scales.data());
  return q;
}

std::vector<float> dequantize(const Fp8Rows& q, std::int64_t head_dim) {
  std::vector<float> out(q.codes.size());
  for (std::size_t i = 0; i < out.size(); ++i)
    out[i] = fp8_e4m3_to_fp32(q.codes[i]) * q.scales[i / static_cast<std::size_t>(head_dim)];
  return out;
}

template <typename T>
std::unique_ptr<BackendBuffer> upload_raw(Backend& b, const std::vector<T>& values) {
  auto buffer = b.allocate(std::max<std::size_t>(values.size() * sizeof(T), 1));
  b.copy_from_host(buffer->data(), values.data(), values.size() * sizeof(T));
  return buffer;
}

template <typename T>
std::vector<T> download_raw(Backend& b, BackendBuffer& buffer, std::size_t n) {
  std::vector<T> out(n);
  b.copy_to_host(out.data(), buffer.data(), n * sizeof(T));
  return out;
}

}  // namespace

TEST_CASE("cuda FP8 K/V: store_kv quantises per head as the CPU does, attention matches" *
          doctest::skip(no_gpu())) {
  auto cpu = cpu_backend();
  auto tensor_cores = gpu_backend();
  auto simt = gpu_backend_with("CONVEYOR_CUDA_ATTENTION", "simt");
  struct Heads {
    std::int64_t heads, kv_heads, head_dim, window;
  };
  // The tensor cores' kernel and the CUDA cores' tiled one (head_dim 64, 128, 256); the
  // general one (16, 80).
  double largest_error = 0;
  for (Backend* gpu : {tensor_cores.get(), simt.get()}) {
    for (const Heads h : {Heads{4, 2, 16, 0}, Heads{9, 3, 64, 0}, Heads{32, 8, 128, 0},
                          Heads{16, 2, 128, 50}, Heads{8, 1, 256, 0}, Heads{6, 2, 80, 0}}) {
      CAPTURE(h.heads);
      CAPTURE(h.kv_heads);
      CAPTURE(h.head_dim);
      CAPTURE(h.window);
      const std::int64_t block_size = 16;
      const std::int64_t num_blocks = 512;
      const std::int64_t kv_dim = h.kv_heads * h.head_dim;
      const RandomStep step = random_step(12, block_size, num_blocks, 1000);
      const std::int64_t tokens = step.layout.num_tokens();
      const auto cache_values = static_cast<std::size_t>(num_blocks * block_size * kv_dim);
      // The cache before the step, and the step's new rows (one with a zero head, one with
      // an outlier, so that both scale rules are crossed).
      const Fp8Rows k_cache = quantize(random_floats(cache_values), h.head_dim);
      const Fp8Rows v_cache = quantize(random_floats(cache_values, 3.0f), h.head_dim);
      auto k = random_floats(static_cast<std::size_t>(tokens * kv_dim));
      auto v = random_floats(static_cast<std::size_t>(tokens * kv_dim), 0.1f);
      std::fill(k.begin(), k.begin() + h.head_dim, 0.0f);
      v[static_cast<std::size_t>(kv_dim)] = 300.0f;
      const auto q = random_floats(static_cast<std::size_t>(tokens * h.heads * h.head_dim), 2.0f);
      AttentionConfig config;
      config.num_heads = h.heads;
      config.num_kv_heads = h.kv_heads;
      config.head_dim = h.head_dim;
      config.scale = 1.0f / std::sqrt(static_cast<float>(h.head_dim));
      config.sliding_window = h.window;

      // GPU: the codes and scales, and the raw f32 rows to store.
      auto kc = upload_raw(*gpu, k_cache.codes);
      auto vc = upload_raw(*gpu, v_cache.codes);
      auto ks = upload_raw(*gpu, k_cache.scales);
      auto vs = upload_raw(*gpu, v_cache.scales);
      auto qb = upload(*gpu, q);
      auto kb = upload(*gpu, k);
      auto vb = upload(*gpu, v);
      auto ob = poisoned(*gpu, q.size());
      KvLayerView layer{kc->data(), vc->data(), num_blocks, block_size, kv_dim, DType::kF8_R};
      layer.k_scales = ks->data();
      layer.v_scales = vs->data();
      layer.num_kv_heads = h.kv_heads;
      auto prepared = gpu->prepare_step(step.layout);
      gpu->store_kv(kb->floats(), vb->floats(), *prepared, layer);
      gpu->attention(qb->floats(), layer, *prepared, config, ob->floats());
      const std::vector<float> gpu_out = download(*gpu, *ob, q.size());
      Fp8Rows k_after{download_raw<std::uint8_t>(*gpu, *kc, cache_values),
                      download_raw<float>(*gpu, *ks, k_cache.scales.size())};
      Fp8Rows v_after{download_raw<std::uint8_t>(*gpu, *vc, cache_values),
                      download_raw<float>(*gpu, *vs, v_cache.scales.size())};

      // The twin: the same rows quantised on the host, written into the host copy of the
      // cache; the CPU's f32 attention over the dequantised cache.
      Fp8Rows k_expected = k_cache;
      Fp8Rows v_expected = v_cache;
      const Fp8Rows k_new = quantize(k, h.head_dim);
      const Fp8Rows v_new = quantize(v, h.head_dim);
      for (std::int64_t t = 0; t < tokens; ++t) {
        const std::int64_t slot = step.layout.slots[static_cast<std::size_t>(t)];
        for (const auto& [into, from] :
             {std::pair{&k_expected, &k_new}, std::pair{&v_expected, &v_new}}) {
          std::memcpy(into->codes.data() + slot * kv_dim, from->codes.data() + t * kv_dim,
                      static_cast<std::size_t>(kv_dim));
          std::memcpy(into->scales.data() + slot * h.kv_heads, from->scales.data() + t * h.kv_heads,
                      static_cast<std::size_t>(h.kv_heads) * sizeof(float));
        }
      }
      CHECK(k_after.codes == k_expected.codes);
      CHECK(v_after.codes == v_expected.codes);
      CHECK(k_after.scales == k_expected.scales);
      CHECK(v_after.scales == v_expected.scales);

      auto kf = upload(*cpu, dequantize(k_cache, h.head_dim));
      auto vf = upload(*cpu, dequantize(v_cache, h.head_dim));
      auto cq = upload(*cpu, q);
      auto ck = upload(*cpu, dequantize(k_new, h.head_dim));
      auto cv = upload(*cpu, dequantize(v_new, h.head_dim));
      auto co = poisoned(*cpu, q.size());
      const KvLayerView cpu_layer{kf->data(), vf->data(), num_blocks,
                                  block_size, kv_dim,     DType::kF32};
      auto cpu_step = cpu->prepare_step(step.layout);
      cpu->store_kv(ck->floats(), cv->floats(), *cpu_step, cpu_layer);
      cpu->attention(cq->floats(), cpu_layer, *cpu_step, config, co->floats());
      const double error = relative_error(gpu_out, download(*cpu, *co, q.size()));
      largest_error = std::max(largest_error, error);
      CHECK(error < 1e-5);
    }
  }
  MESSAGE("FP8 K/V attention, largest relative error against the CPU: " << largest_error);
}

TEST_CASE("cuda FP8 K/V refuses a layer without its scales" * doctest::skip(no_gpu())) {
  auto gpu = gpu_backend();
  auto kc = gpu->allocate(16 * 64);
  auto vc = gpu->allocate(16 * 64);
  const KvLayerView layer{kc->data(), vc->data(), 1, 16, 64, DType::kF8_R};
  StepLayout layout;
  layout.tokens = {1};
  layout.positions = {0};
  layout.slots = {0};
  layout.sequences.push_back({0, 1, 0, {}});
  const std::vector<std::int32_t> table{0};
  layout.sequences[0].block_table = table;
  auto step = gpu->prepare_step(layout);
  auto k = upload(*gpu, random_floats(64));
  CHECK_THROWS_AS(gpu->store_kv(k->floats(), k->floats(), *step, layer), Error);
}
