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

namespace conveyor {
namespace {

TEST_CASE("prefix caching: registered blocks are shared, reference-counted and evicted last") {
  BlockAllocator blocks(4, 2);
  REQUIRE(blocks.reserve(1, 4));  // blocks 0 and 1
  const std::vector<BlockHash> prompt = {100, 200, 300};
  CHECK(blocks.cached_prefix(prompt) == 0);
  blocks.register_block(1, 0, 100);
  blocks.register_block(1, 1, 200);
  CHECK(blocks.cached_blocks() == 2);
  CHECK(blocks.cached_prefix(prompt) == 2);

  // A second sequence takes both; they are shared, not copied.
  CHECK(blocks.take_cached_prefix(2, prompt) == 2);
  CHECK(blocks.block_table(2)[0] == blocks.block_table(1)[0]);
  CHECK(blocks.holders(blocks.block_table(1)[0]) == 2);
  CHECK(blocks.free_blocks() == 2);

  // Released by both, they stay cached, and count as free.
  blocks.release(1);
  blocks.release(2);
  CHECK(blocks.free_blocks() == 4);
  CHECK(blocks.cached_prefix(prompt) == 2);
  CHECK(blocks.take_cached_prefix(3, std::vector<BlockHash>{100}) == 1);
  blocks.release(3);

  // Space is taken from never-used blocks first, then from the cache, the block freed
  // longest ago first: block 1 (hash 200) went before block 0 (hash 100) was freed
  // again.
  REQUIRE(blocks.reserve(4, 6));  // 3 blocks: 2 unused, then one evicted
  CHECK(blocks.cached_blocks() == 1);
  CHECK(blocks.cached_prefix(prompt) == 1);  // hash 100 survived
  // The same content registered twice keeps the first block.
  blocks.register_block(4, 0, 100);
  CHECK(blocks.cached_blocks() == 1);
  CHECK_THROWS(blocks.register_block(4, 7, 5));  // not a block it holds
}

}  // namespace
}  // namespace conveyor
