#include "coordinator/scheduler/block_allocator.h"

#include <doctest/doctest.h>

#include <set>

namespace conveyor {
namespace {

TEST_CASE("the block ledger hands out blocks per sequence and takes them back") {
  BlockAllocator blocks(6, 4);
  CHECK(blocks.free_blocks() == 6);
  CHECK(blocks.blocks_for(0) == 0);
  CHECK(blocks.blocks_for(4) == 1);
  CHECK(blocks.blocks_for(5) == 2);

  REQUIRE(blocks.reserve(7, 5));
  CHECK(blocks.block_table(7).size() == 2);
  CHECK(blocks.blocks_held(7) == 2);
  REQUIRE(blocks.reserve(7, 8));  // already covered
  CHECK(blocks.block_table(7).size() == 2);
  REQUIRE(blocks.reserve(9, 12));
  CHECK(blocks.free_blocks() == 1);
  CHECK(blocks.used_blocks() == 5);

  std::set<std::int32_t> used;
  for (auto id : {7, 9}) {
    for (auto b : blocks.block_table(id))
      CHECK(used.insert(b).second);  // never shared
  }

  CHECK_FALSE(blocks.reserve(11, 8));  // needs two, one free
  CHECK(blocks.block_table(11).empty());
  CHECK(blocks.free_blocks() == 1);
  CHECK_FALSE(blocks.reserve(7, 20));  // growing fails without partial allocation
  CHECK(blocks.block_table(7).size() == 2);

  blocks.release(9);
  CHECK(blocks.free_blocks() == 4);
  CHECK(blocks.block_table(9).empty());
  blocks.release(9);  // unknown: ignored
  REQUIRE(blocks.reserve(11, 16));
  CHECK(blocks.free_blocks() == 0);
}

TEST_CASE("the block ledger refuses sizes it cannot name") {
  CHECK_THROWS(BlockAllocator(0, 4));
  CHECK_THROWS(BlockAllocator(4, 0));
  CHECK_THROWS(BlockAllocator(std::int64_t{1} << 32, 16));
}

}  // namespace
}  // namespace conveyor
