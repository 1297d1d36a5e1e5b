#include "coordinator/scheduler/block_allocator.h"

#include <limits>
#include <utility>

#include "common/status.h"

namespace conveyor {

BlockAllocator::BlockAllocator(std::int64_t num_blocks, std::int64_t block_size)
    : num_blocks_(num_blocks), block_size_(block_size) {
  if (num_blocks <= 0 || block_size <= 0) {
    fail(ErrorCode::kInvalidArgument, "kv blocks: the block count and size must be positive");
  }
  if (num_blocks > std::numeric_limits<std::int32_t>::max()) {
    fail(ErrorCode::kInvalidArgument, "kv blocks: too many blocks for 32-bit block ids");
  }
  const auto n = static_cast<std::size_t>(num_blocks);
  refs_.assign(n, 0);
  hash_.assign(n, 0);
  registered_.assign(n, false);
  reused_.assign(n, false);
  evictable_at_.assign(n, evictable_.end());
  free_.reserve(n);
  // Pushed in reverse so that block 0 is handed out first.
  for (std::int64_t b = num_blocks - 1; b >= 0; --b)
    free_.push_back(static_cast<std::int32_t>(b));
}

std::int32_t BlockAllocator::take_block() {
  std::int32_t block = 0;
  if (!free_.empty()) {
    block = free_.back();
    free_.pop_back();
  } else {
    // Evict the cached block freed longest ago: it loses its registration.
    block = evictable_.front();
    evictable_.pop_front();
    const auto b = static_cast<std::size_t>(block);
    evictable_at_[b] = evictable_.end();
    cached_.erase(hash_[b]);
    registered_[b] = false;
    if (reused_[b]) evicted_.emplace_back(block, hash_[b]);
  }
  refs_[static_cast<std::size_t>(block)] = 1;
  return block;
}

bool BlockAllocator::reserve(SequenceId sequence, std::int64_t tokens) {
  auto& table = tables_[sequence];
  const std::int64_t missing = blocks_for(tokens) - static_cast<std::int64_t>(table.size());
  if (missing > free_blocks()) {
    if (table.empty()) tables_.erase(sequence);
    return false;
  }
  for (std::int64_t i = 0; i < missing; ++i)
    table.push_back(take_block());
  return true;
}

void BlockAllocator::release(SequenceId sequence) {
  auto it = tables_.find(sequence);
  if (it == tables_.end()) return;
  // Last block first: the prompt's first blocks, shared most, become evictable last.
  for (auto block = it->second.rbegin(); block != it->second.rend(); ++block) {
    const auto b = static_cast<std::size_t>(*block);
    if (--refs_[b] > 0) continue;
    if (registered_[b]) {
      evictable_at_[b] = evictable_.insert(evictable_.end(), *block);
    } else {
      free_.push_back(*block);
    }
  }
  tables_.erase(it);
}

std::int64_t BlockAllocator::cached_prefix(std::span<const BlockHash> hashes) const {
  std::int64_t n = 0;
  for (BlockHash h : hashes) {
    if (cached_.count(h) == 0) break;
    ++n;
  }
  return n;
}

std::int64_t BlockAllocator::held_in_prefix(std::span<const BlockHash> hashes) const {
  std::int64_t held = 0;
  for (BlockHash h : hashes) {
    auto found = cached_.find(h);
    if (found != cached_.end() && refs_[static_cast<std::size_t>(found->second)] > 0) ++held;
  }
  return held;
}

std::int64_t BlockAllocator::take_cached_prefix(SequenceId sequence,
                                                std::span<const BlockHash> hashes) {
  auto& table = tables_[sequence];
  if (!table.empty()) fail(ErrorCode::kInternal, "kv blocks: a prefix for a started sequence");
  for (BlockHash h : hashes) {
    auto found = cached_.find(h);
    if (found == cached_.end()) break;
    const auto b = static_cast<std::size_t>(found->second);
    if (refs_[b]++ == 0) {
      evictable_.erase(evictable_at_[b]);
      evictable_at_[b] = evictable_.end();
    }
    reused_[b] = true;
    table.push_back(found->second);
  }
  const auto taken = static_cast<std::int64_t>(table.size());
  if (table.empty()) tables_.erase(sequence);
  return taken;
}

void BlockAllocator::register_block(SequenceId sequence, std::int64_t index, BlockHash hash) {
  auto it = tables_.find(sequence);
  if (it == tables_.end() || index < 0 || index >= static_cast<std::int64_t>(it->second.size())) {
    fail(ErrorCode::kInternal, "kv blocks: registering a block the sequence does not hold");
  }
  const std::int32_t block = it->second[static_cast<std::size_t>(index)];
  const auto b = static_cast<std::size_t>(block);
  if (registered_[b] || cached_.count(hash) != 0) return;
  registered_[b] = true;
  reused_[b] = false;
  hash_[b] = hash;
  cached_.emplace(hash, block);
}

std::vector<std::pair<std::int32_t, BlockHash>> BlockAllocator::take_evicted() {
  return std::exchange(evicted_, {});
}

std::span<const std::int32_t> BlockAllocator::block_table(SequenceId sequence) const {
  auto it = tables_.find(sequence);
  if (it == tables_.end()) return {};
  return it->second;
}

}  // namespace conveyor
