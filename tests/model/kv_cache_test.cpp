#include "worker/kv_cache.h"

#include <doctest/doctest.h>

#include <limits>
#include <set>

#include "common/status.h"
#include "kernels/cpu/cpu_backend.h"

using namespace conveyor;

namespace {

KvCacheConfig small_config() {
  KvCacheConfig c;
  c.num_layers = 2;
  c.num_blocks = 6;
  c.block_size = 4;
  c.kv_dim = 8;
  return c;
}

}  // namespace

TEST_CASE("kv cache layers are disjoint views of the storage") {
  CpuBackend backend;
  const auto config = small_config();
  KvCache cache(backend, config);
  const KvLayerView a = cache.layer(0);
  const KvLayerView b = cache.layer(1);
  const std::int64_t layer_floats = config.num_blocks * config.block_size * config.kv_dim;
  CHECK(static_cast<float*>(b.k) - static_cast<float*>(a.k) == layer_floats);
  CHECK(static_cast<float*>(b.v) - static_cast<float*>(a.v) == layer_floats);
  CHECK(a.dtype == DType::kF32);
  CHECK(a.block_size == 4);
  CHECK(a.kv_dim == 8);
  CHECK_THROWS_AS(cache.layer(2), Error);
  CHECK(kv_block_bytes(config) == 2u * 2 * 4 * 8 * 4);
  KvCacheConfig half = config;
  half.dtype = DType::kBF16;
  CHECK(kv_block_bytes(half) == 2u * 2 * 4 * 8 * 2);
  // The CPU backend keeps f32 K/V only: a bf16 cache is refused, not misread.
  CHECK_THROWS_AS(KvCache(backend, half), Error);
  // FP8: one byte a value, and an f32 scale per head and position, for K and V in each
  // layer (here 2 heads of 4).
  KvCacheConfig fp8 = config;
  fp8.dtype = DType::kF8_R;
  fp8.num_kv_heads = 2;
  CHECK(kv_block_bytes(fp8) == 2u * 2 * (4 * 8 * 1 + 4 * 2 * 4));
  CHECK_THROWS_WITH_AS(KvCache(backend, fp8), doctest::Contains("does not keep K/V as f8_r"),
                       Error);
  fp8.num_kv_heads = 3;  // does not divide the width
  CHECK_THROWS_WITH_AS(KvCache(backend, fp8), doctest::Contains("head count"), Error);
  KvCacheConfig bad = config;
  bad.num_blocks = 0;
  CHECK_THROWS_AS(KvCache(backend, bad), Error);
}

TEST_CASE("kv cache refuses sizes that overflow or exceed the backend's memory") {
  CpuBackend backend;
  KvCacheConfig huge = small_config();
  huge.num_layers = std::int64_t{1} << 40;
  huge.kv_dim = std::int64_t{1} << 30;
  CHECK_THROWS_WITH_AS(KvCache(backend, huge), doctest::Contains("overflows"), Error);

  // Twice the machine's memory, so that the check refuses it before any allocation.
  KvCacheConfig too_big = small_config();
  const std::uint64_t total = backend.memory_info().total_bytes;
  REQUIRE(total > 0);
  too_big.num_blocks =
      static_cast<std::int64_t>(total / (kv_block_bytes(too_big) / 2)) + 1;  // K alone > total
  REQUIRE(too_big.num_blocks < std::numeric_limits<std::int32_t>::max());
  try {
    KvCache cache(backend, too_big);
    FAIL("expected kResourceExhausted");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::kResourceExhausted);
    CHECK(std::string(e.what()).find("available") != std::string::npos);
  }
}
