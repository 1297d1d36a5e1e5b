// Blocks of fresh random bytes for the K/V tier tests, and a tier-independent check of
// the KvTier contract that every tier must pass.
#pragma once

#include <doctest/doctest.h>

#include <cstddef>
#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "worker/kv_store/kv_tier.h"

namespace conveyor::testing {

// Seeded from the hardware each run, so that the runs together cover more data; the
// seed is reported with any failure.
inline std::mt19937_64& random_engine() {
  static std::mt19937_64 engine = [] {
    const std::uint64_t seed = std::random_device{}();
    MESSAGE("K/V tier test seed " << seed);
    return std::mt19937_64(seed);
  }();
  return engine;
}

inline std::vector<std::byte> random_block(std::size_t bytes) {
  std::vector<std::byte> block(bytes);
  for (auto& b : block)
    b = static_cast<std::byte>(random_engine()() & 0xff);
  return block;
}

// Fills every slot with its own random block, reads all back, then releases a few and
// checks that they are reused and hold the new blocks while the others are untouched.
inline void check_round_trips(KvTier& tier) {
  const auto capacity = tier.capacity_blocks();
  REQUIRE(capacity >= 3);
  std::vector<std::vector<std::byte>> written;
  for (std::int64_t i = 0; i < capacity; ++i) {
    const auto slot = tier.allocate();
    REQUIRE(slot.has_value());
    CHECK(*slot == i);  // a fresh tier hands out slots in order
    written.push_back(random_block(tier.block_bytes()));
    REQUIRE(tier.write(*slot, written.back()).ok());
  }
  CHECK(tier.used_blocks() == capacity);
  CHECK_FALSE(tier.allocate().has_value());

  std::vector<std::byte> back(tier.block_bytes());
  for (std::int64_t slot = 0; slot < capacity; ++slot) {
    REQUIRE(tier.read(slot, back).ok());
    CHECK(back == written[static_cast<std::size_t>(slot)]);
  }

  tier.release(1);
  tier.release(capacity - 1);
  CHECK(tier.used_blocks() == capacity - 2);
  for (const std::int64_t expected : {capacity - 1, std::int64_t{1}}) {
    const auto slot = tier.allocate();
    REQUIRE(slot.has_value());
    CHECK(*slot == expected);  // the last released comes back first
    written[static_cast<std::size_t>(*slot)] = random_block(tier.block_bytes());
    REQUIRE(tier.write(*slot, written[static_cast<std::size_t>(*slot)]).ok());
  }
  for (std::int64_t slot = 0; slot < capacity; ++slot) {
    REQUIRE(tier.read(slot, back).ok());
    CHECK(back == written[static_cast<std::size_t>(slot)]);
  }
}

// Wrong sizes, unallocated slots and reads of unwritten slots are refused.
inline void check_refusals(KvTier& tier) {
  const auto slot = tier.allocate();
  REQUIRE(slot.has_value());
  std::vector<std::byte> block = random_block(tier.block_bytes());
  std::vector<std::byte> back(tier.block_bytes());

  // Allocated but never written: the slot may hold an earlier block.
  CHECK(tier.read(*slot, back).code() == ErrorCode::kNotFound);

  std::vector<std::byte> short_block(tier.block_bytes() - 1);
  std::vector<std::byte> long_block(tier.block_bytes() + 1);
  CHECK(tier.write(*slot, short_block).code() == ErrorCode::kInvalidArgument);
  CHECK(tier.write(*slot, long_block).code() == ErrorCode::kInvalidArgument);
  REQUIRE(tier.write(*slot, block).ok());
  CHECK(tier.read(*slot, short_block).code() == ErrorCode::kInvalidArgument);
  CHECK(tier.read(*slot, long_block).code() == ErrorCode::kInvalidArgument);

  const std::int64_t unallocated = *slot + 1;
  CHECK(tier.write(unallocated, block).code() == ErrorCode::kInvalidArgument);
  CHECK(tier.read(unallocated, back).code() == ErrorCode::kInvalidArgument);
  CHECK(tier.write(-1, block).code() == ErrorCode::kInvalidArgument);
  CHECK(tier.read(tier.capacity_blocks(), back).code() == ErrorCode::kInvalidArgument);

  // Released and allocated again: the old block must not come back.
  tier.release(*slot);
  CHECK(tier.read(*slot, back).code() == ErrorCode::kInvalidArgument);
  CHECK_THROWS_AS(tier.release(*slot), Error);
  CHECK_THROWS_AS(tier.release(unallocated), Error);
  const auto again = tier.allocate();
  REQUIRE(again == slot);
  CHECK(tier.read(*again, back).code() == ErrorCode::kNotFound);
  tier.release(*again);
  CHECK(tier.used_blocks() == 0);
}

// A view of `bytes` bytes that starts `offset` bytes past a page boundary.
class OffsetBuffer {
 public:
  OffsetBuffer(std::size_t bytes, std::size_t offset) : storage_(bytes + offset + 4096) {
    const auto base = reinterpret_cast<std::uintptr_t>(storage_.data());
    const std::size_t to_page = (4096 - base % 4096) % 4096;
    view_ = std::span<std::byte>(storage_.data() + to_page + offset, bytes);
  }
  std::span<std::byte> view() const { return view_; }

 private:
  std::vector<std::byte> storage_;
  std::span<std::byte> view_;
};

}  // namespace conveyor::testing
