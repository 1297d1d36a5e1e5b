#include <doctest/doctest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "common/arena_allocator.h"
#include "common/status.h"

using conveyor::ArenaAllocator;

TEST_CASE("arena hands out aligned, disjoint ranges and refuses what does not fit") {
  ArenaAllocator arena(1000, 256);
  CHECK(arena.capacity() == 768);  // whole alignment units only
  const auto a = arena.allocate(1);
  const auto b = arena.allocate(300);
  REQUIRE(a.has_value());
  REQUIRE(b.has_value());
  CHECK(*a == 0);
  CHECK(*b == 256);
  CHECK(arena.used() == 768);
  CHECK_FALSE(arena.allocate(1).has_value());
  CHECK_FALSE(arena.allocate(5000).has_value());
  arena.release(*a);
  CHECK(arena.allocate(256).value() == 0);
}

TEST_CASE("freed neighbours merge back into one range") {
  ArenaAllocator arena(4096, 256);
  std::vector<std::uint64_t> offsets;
  for (int i = 0; i < 16; ++i)
    offsets.push_back(arena.allocate(256).value());
  CHECK(arena.available() == 0);
  // Free every other block, then the rest: the region must end whole again.
  for (std::size_t i = 0; i < offsets.size(); i += 2)
    arena.release(offsets[i]);
  CHECK(arena.largest_free() == 256);
  CHECK(arena.free_ranges() == 8);
  for (std::size_t i = 1; i < offsets.size(); i += 2)
    arena.release(offsets[i]);
  CHECK(arena.free_ranges() == 1);
  CHECK(arena.largest_free() == 4096);
  CHECK(arena.allocate(4096).value() == 0);
}

TEST_CASE("a double free or a stranger's offset is refused") {
  ArenaAllocator arena(4096, 256);
  const auto a = arena.allocate(100).value();
  arena.release(a);
  CHECK_THROWS_AS(arena.release(a), conveyor::Error);
  CHECK_THROWS_AS(arena.release(12345), conveyor::Error);
}

TEST_CASE("random allocations never overlap and always return every byte") {
  std::mt19937 rng(std::random_device{}());
  ArenaAllocator arena(1 << 20, 256);
  struct Range {
    std::uint64_t offset, bytes;
  };
  std::vector<Range> live;
  for (int step = 0; step < 5000; ++step) {
    if (live.empty() || rng() % 3 != 0) {
      const std::uint64_t bytes = 1 + rng() % 40000;
      if (auto offset = arena.allocate(bytes)) {
        for (const Range& r : live) {
          const bool disjoint = *offset + bytes <= r.offset || r.offset + r.bytes <= *offset;
          REQUIRE(disjoint);
        }
        CHECK(*offset % 256 == 0);
        CHECK(*offset + bytes <= arena.capacity());
        live.push_back({*offset, bytes});
      }
    } else {
      const std::size_t i = rng() % live.size();
      arena.release(live[i].offset);
      live.erase(live.begin() + static_cast<std::ptrdiff_t>(i));
    }
  }
  for (const Range& r : live)
    arena.release(r.offset);
  CHECK(arena.used() == 0);
  CHECK(arena.free_ranges() == 1);
}
