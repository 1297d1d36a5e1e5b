// K/V swaps on the CUDA backend: blocks copied off the device into the (pinned) host
// tier and the disk tier (write-behind) and back into other device blocks (read-ahead)
// arrive byte for byte, bf16, f32 and FP8 (codes and scales). With CONVEYOR_GPU_BENCH
// set, the swap bandwidth of each tier against a plain copy of the same size
// (scripts/gpu/memory-bench.sh).
// Skipped without a GPU; built everywhere.
#include <doctest/doctest.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "tests/gpu/cuda_twin.h"
#include "tests/temp_dir.h"
#include "worker/host_pinning.h"
#include "worker/kv_cache.h"
#include "worker/kv_store/aligned_buffer.h"
#include "worker/kv_store/disk_tier.h"
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
  for (const DType dtype : {DType::kBF16, DType::kF32, DType::kF8_R}) {
    CAPTURE(dtype_name(dtype));
    KvCacheConfig config;
    config.num_layers = 4;
    config.num_blocks = 16;
    config.block_size = 16;
    config.kv_dim = 256;
    config.dtype = dtype;
    config.num_kv_heads = 4;  // the FP8 cache's scales travel with its blocks
    KvCache cache(*gpu, config);
    const TempDir dir;
    KvSwapper swapper(cache, KvSwapTiers{4, 4, dir.path().string()});
    CHECK(swapper.host_tier_pinned());
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

namespace {

// A llama-8b block of 16 tokens in bf16: 32 layers x K and V x 16 x 1024 x 2 bytes.
KvCacheConfig llama8b_blocks(std::int64_t blocks) {
  KvCacheConfig config;
  config.num_layers = 32;
  config.num_blocks = blocks;
  config.block_size = 16;
  config.kv_dim = 1024;
  config.dtype = DType::kBF16;
  return config;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

template <typename Fn>
double timed(Fn&& fn) {
  const auto start = std::chrono::steady_clock::now();
  fn();
  return seconds_since(start);
}

double gb_per_s(std::uint64_t bytes, double seconds) {
  return static_cast<double>(bytes) / seconds / 1e9;
}

// Block b holds words b * 2^32 + i: every block different, cheap to make and check.
std::vector<std::uint64_t> pattern_block(std::size_t words, std::uint64_t block) {
  std::vector<std::uint64_t> values(words);
  for (std::size_t i = 0; i < words; ++i)
    values[i] = block << 32 | i;
  return values;
}

std::span<const std::byte> as_bytes_of(const std::vector<std::uint64_t>& values) {
  return std::as_bytes(std::span(values));
}

}  // namespace

// 256 MiB of llama-8b blocks out of the device into a tier and back into other blocks,
// through KvSwapper as the stages use it, against one cudaMemcpy of 256 MiB between the
// device and pinned (then pageable) host memory. Swaps copy each block as 64 pieces of
// 32 KiB (K and V of every layer), so they pay per-copy overhead a single copy does not.
TEST_CASE("cuda K/V swap bandwidth per tier against a plain copy (CONVEYOR_GPU_BENCH)" *
          doctest::skip(no_gpu() || std::getenv("CONVEYOR_GPU_BENCH") == nullptr)) {
  constexpr std::int64_t kBlocks = 128;
  const KvCacheConfig config = llama8b_blocks(kBlocks);
  const std::uint64_t block_bytes = kv_block_bytes(config);
  REQUIRE(block_bytes == 2u << 20);
  const std::uint64_t total = block_bytes * kBlocks;
  std::unique_ptr<Backend> gpu = gpu_backend(0.1);
  MESSAGE("K/V swap bandwidth on " << gpu->name() << ": " << (total >> 20) << " MiB in " << kBlocks
                                   << " blocks of " << (block_bytes >> 20)
                                   << " MiB (llama-8b, bf16, 16 tokens)");

  {
    // The baseline: one copy of the whole size each way.
    std::unique_ptr<BackendBuffer> device = gpu->allocate(total);
    for (const bool pin : {true, false}) {
      AlignedBuffer host(total, kKvSlotAlignment);
      std::memset(host.data(), 1, total);  // commits the pages before timing
      // A refusal is logged and measured as what it is: pageable.
      const bool pinned = pin && host.pin(host_pinner(*gpu));
      CHECK(pinned == pin);
      const auto to_device = [&] {
        gpu->copy_from_host(device->data(), host.data(), total);
        gpu->synchronize();
      };
      const auto to_host = [&] { gpu->copy_to_host(host.data(), device->data(), total); };
      to_device();  // warm-up
      to_host();
      const double in = timed(to_device);
      const double out = timed(to_host);
      MESSAGE("plain copy, " << std::string(pinned ? "pinned"
                                            : pin  ? "pageable (pinning refused)"
                                                   : "pageable")
                             << " host: device->host " << gb_per_s(total, out)
                             << " GB/s, host->device " << gb_per_s(total, in) << " GB/s");
    }
  }

  KvCache cache(*gpu, config);
  const std::size_t words = block_bytes / 8;
  for (std::int32_t b = 0; b < kBlocks; ++b)
    cache.write_block(b, as_bytes_of(pattern_block(words, static_cast<std::uint64_t>(b))));
  std::vector<std::int32_t> forward(kBlocks);
  std::vector<std::int32_t> backward(kBlocks);
  for (std::int32_t b = 0; b < kBlocks; ++b) {
    forward[static_cast<std::size_t>(b)] = b;
    backward[static_cast<std::size_t>(b)] = kBlocks - 1 - b;
  }
  // Out of `from`, back into `to`: each block ends up in its mirror, checked afterwards.
  std::int64_t sequence = 0;
  const auto round_trip = [&](KvSwapper& swapper, KvTierId tier, double& out, double& in) {
    ++sequence;
    const bool mirrored = sequence % 2 == 1;  // where the blocks are now
    const std::vector<std::int32_t>& from = mirrored ? forward : backward;
    const std::vector<std::int32_t>& to = mirrored ? backward : forward;
    out = timed([&] { swapper.apply({sequence, KvSwap::Direction::kOut, tier, from}); });
    in = timed([&] { swapper.apply({sequence, KvSwap::Direction::kIn, tier, to}); });
  };
  const auto check_blocks = [&] {
    // After an even number of round trips each block is where it started.
    std::vector<std::uint64_t> now(words);
    int wrong = 0;
    for (std::int32_t b = 0; b < kBlocks; ++b) {
      cache.read_block(b, std::as_writable_bytes(std::span(now)));
      wrong += now != pattern_block(words, static_cast<std::uint64_t>(b));
    }
    CHECK(wrong == 0);
  };

  {
    KvSwapper swapper(cache, KvSwapTiers{kBlocks, 0, ""});
    CHECK(swapper.host_tier_pinned());
    double out = 0;
    double in = 0;
    round_trip(swapper, KvTierId::kHost, out, in);  // warm-up
    round_trip(swapper, KvTierId::kHost, out, in);
    check_blocks();
    MESSAGE("host tier (" << std::string(swapper.host_tier_pinned() ? "pinned" : "NOT pinned")
                          << "): device->host " << gb_per_s(total, out) << " GB/s, host->device "
                          << gb_per_s(total, in) << " GB/s");
  }
  {
    const TempDir dir;
    const bool direct = DiskTier(dir.path(), block_bytes, block_bytes).direct();
    KvSwapper swapper(cache, KvSwapTiers{0, kBlocks, dir.path().string()});
    double out = 0;
    double in = 0;
    round_trip(swapper, KvTierId::kDisk, out, in);  // warm-up: file extents, buffers
    round_trip(swapper, KvTierId::kDisk, out, in);
    check_blocks();
    MESSAGE("disk tier (" << std::string(direct ? "O_DIRECT" : "buffered") << ", "
                          << dir.path().string() << "): device->host buffers "
                          << gb_per_s(total, out)
                          << " GB/s (writes queued behind), then waiting for the writes, "
                             "disk->device "
                          << gb_per_s(total, in) << " GB/s; round trip "
                          << gb_per_s(2 * total, out + in) << " GB/s");
  }
}

TEST_CASE("cuda K/V blocks of llama-8b's size round-trip through the pinned host tier exactly" *
          doctest::skip(no_gpu())) {
  const KvCacheConfig config = llama8b_blocks(8);
  std::unique_ptr<Backend> gpu = gpu_backend(0.05);
  KvCache cache(*gpu, config);
  const std::size_t words = kv_block_bytes(config) / 8;
  for (std::int32_t b = 0; b < 4; ++b)
    cache.write_block(b, as_bytes_of(pattern_block(words, static_cast<std::uint64_t>(b) + 100)));
  KvSwapper swapper(cache, KvSwapTiers{4, 0, ""});
  CHECK(swapper.host_tier_pinned());
  swapper.apply({1, KvSwap::Direction::kOut, KvTierId::kHost, {0, 1, 2, 3}});
  swapper.apply({1, KvSwap::Direction::kIn, KvTierId::kHost, {7, 6, 5, 4}});
  std::vector<std::uint64_t> now(words);
  for (std::int32_t b = 0; b < 4; ++b) {
    cache.read_block(7 - b, std::as_writable_bytes(std::span(now)));
    CHECK(now == pattern_block(words, static_cast<std::uint64_t>(b) + 100));
  }
}
