// The KV block ledger of one pipeline replica: which fixed-size blocks of the paged
// KV cache each sequence holds (its block table) and which are free. Every stage of
// the replica holds the same block ids for its own layers, so one ledger in the
// coordinator places K/V for all of them; the workers only store.
//
// Prefix caching: a full block whose K/V are computed can be registered under the
// hash of its content (the hash of the previous block and its tokens). A new sequence
// whose prompt starts with the same blocks takes them instead of computing them
// again: blocks are reference-counted, and a registered block that no sequence holds
// stays cached until its space is needed (least recently freed first).
#pragma once

#include <cstdint>
#include <list>
#include <span>
#include <unordered_map>
#include <utility>
#include <vector>

#include "coordinator/scheduler/policies.h"

namespace conveyor {

using SequenceId = std::int64_t;
using BlockHash = std::uint64_t;

class BlockAllocator {
 public:
  // Throws Error(kInvalidArgument) for non-positive sizes or more blocks than 32-bit
  // block ids can name.
  BlockAllocator(std::int64_t num_blocks, std::int64_t block_size);
  // Not copyable: the LRU positions are iterators into this object's own list.
  BlockAllocator(const BlockAllocator&) = delete;
  BlockAllocator& operator=(const BlockAllocator&) = delete;
  BlockAllocator(BlockAllocator&&) = default;
  BlockAllocator& operator=(BlockAllocator&&) = default;

  std::int64_t num_blocks() const { return num_blocks_; }
  std::int64_t block_size() const { return block_size_; }
  // Blocks a sequence can get: never used, or cached but held by no sequence.
  std::int64_t free_blocks() const {
    return static_cast<std::int64_t>(free_.size() + evictable_.size());
  }
  std::int64_t used_blocks() const { return num_blocks_ - free_blocks(); }
  std::int64_t cached_blocks() const { return static_cast<std::int64_t>(cached_.size()); }
  std::int64_t blocks_for(std::int64_t tokens) const {
    return conveyor::blocks_for(tokens, block_size_);
  }

  // Grows the sequence's table until it covers `tokens` positions. Returns false,
  // changing nothing, when too few blocks are free.
  bool reserve(SequenceId sequence, std::int64_t tokens);
  // Gives back every block of the sequence; registered ones stay cached. Unknown ids
  // are ignored.
  void release(SequenceId sequence);

  // How many of `hashes` (a prompt's full blocks, in order) are cached, from the first.
  std::int64_t cached_prefix(std::span<const BlockHash> hashes) const;
  // Of the cached blocks of `hashes` (all of which must be cached), how many some
  // sequence holds: taking those costs no free block.
  std::int64_t held_in_prefix(std::span<const BlockHash> hashes) const;
  // Starts the (empty) table of `sequence` with the cached blocks of the longest
  // prefix of `hashes`; returns how many it took.
  std::int64_t take_cached_prefix(SequenceId sequence, std::span<const BlockHash> hashes);
  // Registers block `index` of the sequence's table, whose K/V are now computed,
  // under `hash`. No effect when the block is already registered or another block
  // holds the same content.
  void register_block(SequenceId sequence, std::int64_t index, BlockHash hash);

  // Registered blocks evicted (handed out again) since the last call that some sequence
  // had taken from the cache (a prefix in use, likely wanted again), with their hashes.
  // Their K/V stay in the block until the step that reuses it runs, so the caller can
  // copy them to a lower tier first.
  std::vector<std::pair<std::int32_t, BlockHash>> take_evicted();

  // Empty for an unknown sequence; valid until the next reserve/release of it.
  std::span<const std::int32_t> block_table(SequenceId sequence) const;
  std::int64_t blocks_held(SequenceId sequence) const {
    return static_cast<std::int64_t>(block_table(sequence).size());
  }
  // How many sequences hold the block (for tests and diagnostics).
  std::int32_t holders(std::int32_t block) const { return refs_[static_cast<std::size_t>(block)]; }

 private:
  std::int32_t take_block();

  std::int64_t num_blocks_;
  std::int64_t block_size_;
  std::vector<std::int32_t> free_;  // unregistered and unheld; a stack
  std::vector<std::int32_t> refs_;  // per block: sequences holding it
  std::vector<BlockHash> hash_;     // per block: its registered hash
  std::vector<bool> registered_;
  std::vector<bool> reused_;  // per registered block: taken from the cache at least once
  std::unordered_map<BlockHash, std::int32_t> cached_;  // hash -> registered block
  // Registered blocks no sequence holds, least recently freed first, and where each
  // sits in that list.
  std::list<std::int32_t> evictable_;
  std::vector<std::list<std::int32_t>::iterator> evictable_at_;
  std::unordered_map<SequenceId, std::vector<std::int32_t>> tables_;
  std::vector<std::pair<std::int32_t, BlockHash>> evicted_;
};

}  // namespace conveyor
