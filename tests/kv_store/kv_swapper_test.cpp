#include "worker/kv_swapper.h"

#include <doctest/doctest.h>

#include <cstring>
#include <functional>
#include <vector>

#include "kernels/cpu/cpu_backend.h"
#include "tests/kv_store/random_blocks.h"
#include "tests/pin_recording_backend.h"
#include "tests/temp_dir.h"

namespace conveyor {
namespace {

using testing::random_block;
using Bytes = std::vector<std::byte>;

// Keeps bf16 K/V too (the cache only stores bytes, and swapping must not care what they
// are), and records what the swapper pins for it as a device backend would.
using HalfKvBackend = testing::PinRecordingBackend;

KvCacheConfig small_config(DType dtype) {
  KvCacheConfig c;
  c.num_layers = 3;
  c.num_blocks = 8;
  c.block_size = 4;
  c.kv_dim = 8;
  c.dtype = dtype;
  return c;
}

ErrorCode thrown_code(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.code();
  }
  return ErrorCode::kOk;
}

Bytes read_block(const KvCache& cache, std::int32_t block) {
  Bytes bytes(kv_block_bytes(cache.config()));
  cache.read_block(block, bytes);
  return bytes;
}

// Fills every device block with fresh random bytes; returns them by block.
std::vector<Bytes> fill_cache(KvCache& cache) {
  std::vector<Bytes> blocks;
  for (std::int32_t b = 0; b < cache.config().num_blocks; ++b) {
    blocks.push_back(random_block(kv_block_bytes(cache.config())));
    cache.write_block(b, blocks.back());
  }
  return blocks;
}

KvSwap swap_out(std::int64_t sequence, KvTierId tier, std::vector<std::int32_t> blocks) {
  return KvSwap{sequence, KvSwap::Direction::kOut, tier, std::move(blocks)};
}

KvSwap swap_in(std::int64_t sequence, KvTierId tier, std::vector<std::int32_t> blocks) {
  return KvSwap{sequence, KvSwap::Direction::kIn, tier, std::move(blocks)};
}

TEST_CASE("a kv cache block reads back as written, packed as K then V of every layer") {
  HalfKvBackend backend;
  for (const DType dtype : {DType::kF32, DType::kBF16}) {
    CAPTURE(dtype_name(dtype));
    KvCache cache(backend, small_config(dtype));
    const std::vector<Bytes> written = fill_cache(cache);
    for (std::int32_t b = 0; b < 8; ++b)
      CHECK(read_block(cache, b) == written[static_cast<std::size_t>(b)]);

    // Each part lands where the layer views (and so the kernels) see that block.
    const std::size_t part = kv_block_bytes(cache.config()) / 6;
    const Bytes& block5 = written[5];
    for (std::int64_t l = 0; l < 3; ++l) {
      const KvLayerView view = cache.layer(l);
      const auto* k = static_cast<const std::byte*>(view.k) + 5 * part;
      const auto* v = static_cast<const std::byte*>(view.v) + 5 * part;
      CHECK(std::memcmp(k, block5.data() + static_cast<std::size_t>(l) * part, part) == 0);
      CHECK(std::memcmp(v, block5.data() + static_cast<std::size_t>(3 + l) * part, part) == 0);
    }

    Bytes block(kv_block_bytes(cache.config()));
    Bytes wrong(block.size() + 1);
    CHECK(thrown_code([&] { cache.read_block(8, block); }) == ErrorCode::kOutOfRange);
    CHECK(thrown_code([&] { cache.write_block(-1, block); }) == ErrorCode::kOutOfRange);
    CHECK(thrown_code([&] { cache.read_block(0, wrong); }) == ErrorCode::kInvalidArgument);
    CHECK(thrown_code([&] { cache.write_block(0, std::span(wrong).first(block.size() - 1)); }) ==
          ErrorCode::kInvalidArgument);
  }
}

TEST_CASE("swapped-out sequences come back byte for byte in other device blocks") {
  HalfKvBackend backend;
  for (const DType dtype : {DType::kF32, DType::kBF16}) {
    CAPTURE(dtype_name(dtype));
    testing::TempDir dir;
    KvCache cache(backend, small_config(dtype));
    KvSwapper swapper(cache, KvSwapTiers{4, 4, dir.path().string()});
    const std::uint64_t block_bytes = kv_block_bytes(cache.config());
    CHECK(swapper.capacity_blocks(KvTierId::kHost) == 4);
    CHECK(swapper.capacity_blocks(KvTierId::kDisk) == 4);

    const std::vector<Bytes> before = fill_cache(cache);
    swapper.apply(swap_out(1, KvTierId::kHost, {0, 1, 2}));
    swapper.apply(swap_out(2, KvTierId::kDisk, {3, 4}));
    CHECK(swapper.used_blocks(KvTierId::kHost) == 3);
    CHECK(swapper.used_blocks(KvTierId::kDisk) == 2);
    CHECK(swapper.swapped_sequences() == 2);
    CHECK(swapper.bytes_moved() == 5 * block_bytes);

    // Others take the device blocks meanwhile.
    const std::vector<Bytes> others = fill_cache(cache);
    swapper.apply(swap_in(1, KvTierId::kHost, {5, 7, 6}));
    swapper.apply(swap_in(2, KvTierId::kDisk, {0, 1}));
    CHECK(read_block(cache, 5) == before[0]);
    CHECK(read_block(cache, 7) == before[1]);
    CHECK(read_block(cache, 6) == before[2]);
    CHECK(read_block(cache, 0) == before[3]);
    CHECK(read_block(cache, 1) == before[4]);
    for (const std::int32_t untouched : {2, 3, 4})
      CHECK(read_block(cache, untouched) == others[static_cast<std::size_t>(untouched)]);

    CHECK(swapper.used_blocks(KvTierId::kHost) == 0);
    CHECK(swapper.used_blocks(KvTierId::kDisk) == 0);
    CHECK(swapper.swapped_sequences() == 0);
    CHECK(swapper.bytes_moved() == 10 * block_bytes);
  }
}

TEST_CASE("disk swap-ins read ahead while the step computes, and still come back exact") {
  CpuBackend backend(CpuBackendOptions{1, std::nullopt, false});
  testing::TempDir dir;
  KvCache cache(backend, small_config(DType::kF32));
  KvSwapper swapper(cache, KvSwapTiers{0, 6, dir.path().string()});
  const std::vector<Bytes> before = fill_cache(cache);
  // Out behind the step: the device blocks are copied at once, so overwriting them
  // right after does not reach the disk.
  swapper.apply(swap_out(1, KvTierId::kDisk, {0, 1, 2}));
  swapper.apply(swap_out(2, KvTierId::kDisk, {3}));
  const std::vector<Bytes> others = fill_cache(cache);
  // The next plan's swap-in of 1 is read ahead; 2's is not, and is read when applied.
  swapper.prefetch(swap_in(1, KvTierId::kDisk, {4, 5, 6}));
  swapper.prefetch(swap_in(7, KvTierId::kDisk, {7}));     // not out: ignored
  swapper.prefetch(swap_in(1, KvTierId::kDisk, {4, 5}));  // not as it went out: ignored
  swapper.apply(swap_in(1, KvTierId::kDisk, {4, 5, 6}));
  swapper.apply(swap_in(2, KvTierId::kDisk, {7}));
  CHECK(swapper.prefetched_swaps() == 1);
  CHECK(read_block(cache, 4) == before[0]);
  CHECK(read_block(cache, 5) == before[1]);
  CHECK(read_block(cache, 6) == before[2]);
  CHECK(read_block(cache, 7) == before[3]);
  CHECK(read_block(cache, 0) == others[0]);
  CHECK(swapper.used_blocks(KvTierId::kDisk) == 0);
  // A sequence read ahead that leaves instead gives its slots back too.
  swapper.apply(swap_out(3, KvTierId::kDisk, {0, 1}));
  swapper.prefetch(swap_in(3, KvTierId::kDisk, {2, 3}));
  swapper.release(3);
  CHECK(swapper.used_blocks(KvTierId::kDisk) == 0);
  CHECK(swapper.swapped_sequences() == 0);
  // A cached block the scheduler no longer wants is dropped where it is.
  swapper.apply(swap_out(-1, KvTierId::kDisk, {5}));
  CHECK(swapper.used_blocks(KvTierId::kDisk) == 1);
  swapper.apply(KvSwap{-1, KvSwap::Direction::kDrop, KvTierId::kDisk, {}});
  CHECK(swapper.used_blocks(KvTierId::kDisk) == 0);
}

TEST_CASE("swaps the ledger should never have planned are internal errors that take nothing") {
  CpuBackend backend(CpuBackendOptions{1, std::nullopt, false});
  KvCache cache(backend, small_config(DType::kF32));
  fill_cache(cache);
  KvSwapper swapper(cache, KvSwapTiers{3, 0, ""});
  CHECK(swapper.capacity_blocks(KvTierId::kDisk) == 0);
  const auto code = [&](const KvSwap& swap) { return thrown_code([&] { swapper.apply(swap); }); };

  // Unknown, from the wrong tier, into another number of blocks.
  CHECK(code(swap_in(7, KvTierId::kHost, {0})) == ErrorCode::kInternal);
  swapper.apply(swap_out(1, KvTierId::kHost, {2}));
  CHECK(code(swap_in(1, KvTierId::kDisk, {0})) == ErrorCode::kInternal);
  CHECK(code(swap_in(1, KvTierId::kHost, {0, 3})) == ErrorCode::kInternal);
  CHECK(code(swap_in(1, KvTierId::kHost, {})) == ErrorCode::kInternal);
  CHECK(swapper.swapped_sequences() == 1);  // still out, still whole
  CHECK(swapper.used_blocks(KvTierId::kHost) == 1);

  // No disk tier; no room for three more; out twice; a device block that does not exist.
  CHECK(code(swap_out(2, KvTierId::kDisk, {0})) == ErrorCode::kInternal);
  CHECK(code(swap_out(2, KvTierId::kHost, {0, 1, 3})) == ErrorCode::kInternal);
  CHECK(code(swap_out(1, KvTierId::kHost, {0})) == ErrorCode::kInternal);
  CHECK(code(swap_out(2, KvTierId::kHost, {0, 8})) == ErrorCode::kOutOfRange);
  CHECK(swapper.used_blocks(KvTierId::kHost) == 1);
  CHECK(swapper.swapped_sequences() == 1);
  CHECK(swapper.bytes_moved() == kv_block_bytes(cache.config()));

  // The failed calls gave their slots back: two sequences still fit.
  swapper.apply(swap_out(2, KvTierId::kHost, {0, 1}));
  CHECK(swapper.used_blocks(KvTierId::kHost) == 3);
  swapper.apply(swap_in(1, KvTierId::kHost, {4}));
  CHECK(swapper.used_blocks(KvTierId::kHost) == 2);
}

TEST_CASE("a backend that pins gets the host pool once, whole, and swaps go straight into it") {
  HalfKvBackend backend;
  KvCache cache(backend, small_config(DType::kBF16));
  const std::vector<Bytes> before = fill_cache(cache);
  const std::uint64_t block_bytes = kv_block_bytes(cache.config());
  const std::uint64_t stride = round_up(block_bytes, kKvSlotAlignment);
  std::shared_ptr<bool> pool_live;
  {
    KvSwapper swapper(cache, KvSwapTiers{5, 0, ""});
    REQUIRE(backend.pins.size() == 1);
    const testing::PinnedRange pool = backend.pins[0];
    pool_live = pool.live;
    CHECK(pool.bytes == 5 * stride);  // every slot, nothing more
    CHECK(reinterpret_cast<std::uintptr_t>(pool.data) % kKvSlotAlignment == 0);
    CHECK_FALSE(pool.read_only);
    CHECK(swapper.host_tier_pinned());

    // The device copies the block into its slot of that range, not into other memory.
    swapper.apply(swap_out(1, KvTierId::kHost, {2, 6}));
    int found = 0;
    for (std::uint64_t slot = 0; slot < 5; ++slot) {
      for (const std::size_t b : {std::size_t{2}, std::size_t{6}})
        found += std::memcmp(pool.data + slot * stride, before[b].data(), block_bytes) == 0;
    }
    CHECK(found == 2);
    fill_cache(cache);
    swapper.apply(swap_in(1, KvTierId::kHost, {0, 1}));
    CHECK(read_block(cache, 0) == before[2]);
    CHECK(read_block(cache, 1) == before[6]);
    CHECK(backend.pins.size() == 1);  // swaps pin nothing more
    CHECK(*pool_live);
  }
  CHECK_FALSE(*pool_live);  // unpinned with the swapper

  // The disk path pins its staging block and each buffer as it is made, once.
  backend.pins.clear();
  testing::TempDir dir;
  KvSwapper swapper(cache, KvSwapTiers{0, 4, dir.path().string()});
  CHECK_FALSE(swapper.host_tier_pinned());
  CHECK(backend.pins.size() == 1);
  swapper.apply(swap_out(2, KvTierId::kDisk, {3, 4}));
  swapper.apply(swap_in(2, KvTierId::kDisk, {5, 6}));
  swapper.apply(swap_out(3, KvTierId::kDisk, {0}));
  swapper.apply(swap_in(3, KvTierId::kDisk, {1}));
  // The staging block and the write-behind buffers taken, each pinned once and reused:
  // two, or one when the I/O thread hands the first back before the second is taken.
  CHECK(backend.pins.size() >= 2);
  CHECK(backend.pins.size() <= 3);
  for (const testing::PinnedRange& pin : backend.pins)
    CHECK(pin.bytes == stride);
}

TEST_CASE("a sequence that leaves while swapped out frees its slots") {
  CpuBackend backend(CpuBackendOptions{1, std::nullopt, false});
  KvCache cache(backend, small_config(DType::kF32));
  fill_cache(cache);
  KvSwapper swapper(cache, KvSwapTiers{4, 0, ""});
  CHECK_FALSE(swapper.host_tier_pinned());  // the CPU backend pins nothing
  swapper.apply(swap_out(1, KvTierId::kHost, {0, 1}));
  swapper.apply(swap_out(2, KvTierId::kHost, {2}));
  swapper.release(1);
  swapper.release(99);  // never swapped: nothing to free
  CHECK(swapper.used_blocks(KvTierId::kHost) == 1);
  CHECK(swapper.swapped_sequences() == 1);
  CHECK(thrown_code([&] {
          swapper.apply(swap_in(1, KvTierId::kHost, {0, 1}));
        }) == ErrorCode::kInternal);
  swapper.release(2);
  swapper.release(2);  // twice: the second finds nothing
  CHECK(swapper.used_blocks(KvTierId::kHost) == 0);
  CHECK(swapper.swapped_sequences() == 0);
}

TEST_CASE("a swapper's tiers are optional, but a disk tier needs a directory") {
  CpuBackend backend(CpuBackendOptions{1, std::nullopt, false});
  KvCache cache(backend, small_config(DType::kF32));
  KvSwapper none(cache, KvSwapTiers{});
  CHECK(none.capacity_blocks(KvTierId::kHost) == 0);
  CHECK(none.used_blocks(KvTierId::kDisk) == 0);
  CHECK(thrown_code([&] { none.apply(swap_out(1, KvTierId::kHost, {0})); }) ==
        ErrorCode::kInternal);
  CHECK(thrown_code([&] {
          KvSwapper(cache, KvSwapTiers{0, 2, ""});
        }) == ErrorCode::kInvalidArgument);
  CHECK(thrown_code([&] {
          KvSwapper(cache, KvSwapTiers{-1, 0, ""});
        }) == ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace conveyor
