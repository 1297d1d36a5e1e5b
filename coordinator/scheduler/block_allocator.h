// The KV block ledger of one pipeline replica: which fixed-size blocks of the paged
// KV cache each sequence holds (its block table) and which are free. Every stage of
// the replica holds the same block ids for its own layers, so one ledger in the
// coordinator places K/V for all of them; the workers only store.
#pragma once

#include <cstdint>
#include <span>
#include <unordered_map>
#include <vector>

namespace conveyor {

using SequenceId = std::int64_t;

class BlockAllocator {
 public:
  // Throws Error(kInvalidArgument) for non-positive sizes or more blocks than 32-bit
  // block ids can name.
  BlockAllocator(std::int64_t num_blocks, std::int64_t block_size);

  std::int64_t num_blocks() const { return num_blocks_; }
  std::int64_t block_size() const { return block_size_; }
  std::int64_t free_blocks() const { return static_cast<std::int64_t>(free_.size()); }
  std::int64_t used_blocks() const { return num_blocks_ - free_blocks(); }
  std::int64_t blocks_for(std::int64_t tokens) const {
    return (tokens + block_size_ - 1) / block_size_;
  }

  // Grows the sequence's table until it covers `tokens` positions. Returns false,
  // changing nothing, when too few blocks are free.
  bool reserve(SequenceId sequence, std::int64_t tokens);
  // Returns every block of the sequence to the free list; unknown ids are ignored.
  void release(SequenceId sequence);

  // Empty for an unknown sequence; valid until the next reserve/release of it.
  std::span<const std::int32_t> block_table(SequenceId sequence) const;
  std::int64_t blocks_held(SequenceId sequence) const {
    return static_cast<std::int64_t>(block_table(sequence).size());
  }

 private:
  std::int64_t num_blocks_;
  std::int64_t block_size_;
  std::vector<std::int32_t> free_;  // a stack: recently freed blocks are reused first
  std::unordered_map<SequenceId, std::vector<std::int32_t>> tables_;
};

}  // namespace conveyor
