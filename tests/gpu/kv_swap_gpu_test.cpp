// K/V swaps on the CUDA backend: blocks copied off the device into the host and disk
// tiers (write-behind) and back into other device blocks (read-ahead) arrive byte for
// byte, bf16 and f32. Skipped without a GPU; built everywhere.
#include <doctest/doctest.h>

#include <random>
#include <vector>

#include "tests/gpu/cuda_twin.h"
#include "tests/temp_dir.h"
#include "worker/kv_cache.h"
#include "worker/kv_swapper.h"

using namespace conveyor;
using namespace conveyor::testing;

namespace {

using Bytes = std::vector<std::byte>;

Bytes random_bytes(std::size_t n, std::mt19937_64& random) {
  Bytes bytes(n);
  for (std::byte& b : bytes)
    b = static_cast<std::byte>(random() & 0xFF);
  return bytes;
}

}  // namespace

TEST_CASE("cuda K/V blocks swap to host and disk and back into other blocks, exactly" *
          doctest::skip(no_gpu())) {
  std::unique_ptr<Backend> gpu = gpu_backend();
  std::mt19937_64 random(std::random_device{}());
  for (const DType dtype : {DType::kBF16, DType::kF32}) {
    CAPTURE(dtype_name(dtype));
    KvCacheConfig config;
    config.num_layers = 4;
    config.num_blocks = 16;
    config.block_size = 16;
    config.kv_dim = 256;
    config.dtype = dtype;
    KvCache cache(*gpu, config);
    const TempDir dir;
    KvSwapper swapper(cache, KvSwapTiers{4, 4, dir.path().string()});
    const std::size_t block_bytes = kv_block_bytes(config);
    std::vector<Bytes> before;
    for (std::int32_t b = 0; b < config.num_blocks; ++b) {
      before.push_back(random_bytes(block_bytes, random));
      cache.write_block(b, before.back());
    }
    swapper.apply({1, KvSwap::Direction::kOut, KvTierId::kHost, {0, 1, 2}});
    swapper.apply({2, KvSwap::Direction::kOut, KvTierId::kDisk, {3, 4}});
    for (std::int32_t b = 0; b < 5; ++b)  // others take the blocks meanwhile
      cache.write_block(b, random_bytes(block_bytes, random));
    const KvSwap in2{2, KvSwap::Direction::kIn, KvTierId::kDisk, {9, 8}};
    swapper.prefetch(in2);
    swapper.apply({1, KvSwap::Direction::kIn, KvTierId::kHost, {12, 14, 13}});
    swapper.apply(in2);
    CHECK(swapper.prefetched_swaps() == 1);
    const std::pair<std::int32_t, std::size_t> moved[] = {
        {12, 0}, {14, 1}, {13, 2}, {9, 3}, {8, 4}};
    for (const auto& [block, was] : moved) {
      Bytes now(block_bytes);
      cache.read_block(block, now);
      CHECK(now == before[was]);
    }
  }
}
