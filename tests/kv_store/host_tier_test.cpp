#include "worker/kv_store/host_tier.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "tests/kv_store/random_blocks.h"

namespace conveyor {
namespace {

using testing::random_block;

TEST_CASE("the host tier round-trips random blocks and reuses released slots") {
  // 8 slots of a block that is not a multiple of a page, plus a budget remainder that
  // holds no slot.
  const std::uint64_t block_bytes = 3 * 4096 + 100;
  HostTier tier(block_bytes, 8 * 4 * 4096 + 5000);
  CHECK(tier.name() == "host");
  CHECK(tier.block_bytes() == block_bytes);
  CHECK(tier.capacity_blocks() == 8);
  CHECK(tier.used_blocks() == 0);
  testing::check_round_trips(tier);
}

TEST_CASE("the host tier refuses wrong sizes, foreign slots and unwritten reads") {
  HostTier tier(4096, 4 * 4096);
  testing::check_refusals(tier);
}

TEST_CASE("the host tier works with caller buffers at any alignment") {
  HostTier tier(1000, 4 * 4096);
  for (const std::size_t offset : {0, 1, 7, 100}) {
    const auto slot = tier.allocate();
    REQUIRE(slot.has_value());
    const auto block = random_block(1000);
    testing::OffsetBuffer in(1000, offset);
    std::copy(block.begin(), block.end(), in.view().begin());
    REQUIRE(tier.write(*slot, in.view()).ok());
    testing::OffsetBuffer out(1000, offset + 3);
    REQUIRE(tier.read(*slot, out.view()).ok());
    CHECK(std::equal(block.begin(), block.end(), out.view().begin()));
    tier.release(*slot);
  }
}

TEST_CASE("a host tier pins its whole pool once, and works unpinned when refused") {
  struct Pin final : HostPinning {};
  std::vector<std::span<std::byte>> asked;
  const PinHostMemory pin = [&](std::span<std::byte> range) -> std::unique_ptr<HostPinning> {
    asked.push_back(range);
    return std::make_unique<Pin>();
  };
  // 3 slots of 8192 bytes; the remainder of the budget holds no slot and is not allocated.
  HostTier tier(4097, 3 * 8192 + 5000, pin);
  REQUIRE(asked.size() == 1);
  CHECK(asked[0].size() == 3 * 8192);
  CHECK(tier.pool_bytes() == 3 * 8192);
  CHECK(reinterpret_cast<std::uintptr_t>(asked[0].data()) % kKvSlotAlignment == 0);
  CHECK(tier.pinned());
  // A block written in place lands in the pinned range.
  const auto slot = tier.allocate();
  REQUIRE(slot.has_value());
  const auto block = random_block(4097);
  REQUIRE(tier.write_in_place(*slot, block.size(),
                              [&](std::span<std::byte> to) {
                                std::copy(block.begin(), block.end(), to.begin());
                              })
              .ok());
  CHECK(std::equal(block.begin(), block.end(), asked[0].begin() + *slot * 8192));
  CHECK(asked.size() == 1);

  HostTier refused(4096, 4 * 4096, [](std::span<std::byte>) { return nullptr; });
  CHECK_FALSE(refused.pinned());
  testing::check_round_trips(refused);
}

TEST_CASE("a host tier needs a non-empty block and a budget of at least one slot") {
  CHECK_THROWS_AS(HostTier(0, 1 << 20), Error);
  CHECK_THROWS_AS(HostTier(4097, 8191), Error);  // a slot is 8192 bytes
  CHECK(HostTier(4097, 8192).capacity_blocks() == 1);
}

}  // namespace
}  // namespace conveyor
