// The hashes under which prefix caching registers a prompt's full KV blocks. The
// scheduler looks cached blocks up by them, and the batch intake orders a file by
// them, so both must compute them the same way: here, once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "coordinator/scheduler/block_allocator.h"

namespace conveyor {

// SplitMix64's finaliser: a bijection of 64-bit values that spreads every input bit
// over the output.
inline std::uint64_t splitmix64_mix(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// The chained hash of each full block of a prompt, at most `max_blocks` of them:
// block i's hash covers every token up to its end, so equal hashes mean equal
// prefixes (up to 64-bit collisions). A partial last block has none.
inline std::vector<BlockHash> prompt_block_hashes(
    std::span<const std::int32_t> prompt, std::int64_t block_size,
    std::size_t max_blocks = std::numeric_limits<std::size_t>::max()) {
  std::vector<BlockHash> hashes;
  if (block_size <= 0) return hashes;
  const auto block = static_cast<std::size_t>(block_size);
  const std::size_t full = prompt.size() / block;
  hashes.reserve(full < max_blocks ? full : max_blocks);
  BlockHash h = 0x9e3779b97f4a7c15ull;
  for (std::size_t i = 0; i < prompt.size() && hashes.size() < max_blocks; ++i) {
    h = splitmix64_mix(h ^ static_cast<std::uint32_t>(prompt[i]));
    if ((i + 1) % block == 0) hashes.push_back(h);
  }
  return hashes;
}

}  // namespace conveyor
