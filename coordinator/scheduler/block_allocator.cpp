#include "coordinator/scheduler/block_allocator.h"

#include <limits>

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
  free_.reserve(static_cast<std::size_t>(num_blocks));
  // Pushed in reverse so that block 0 is handed out first.
  for (std::int64_t b = num_blocks - 1; b >= 0; --b)
    free_.push_back(static_cast<std::int32_t>(b));
}

bool BlockAllocator::reserve(SequenceId sequence, std::int64_t tokens) {
  auto& table = tables_[sequence];
  const std::int64_t missing = blocks_for(tokens) - static_cast<std::int64_t>(table.size());
  if (missing > free_blocks()) {
    if (table.empty()) tables_.erase(sequence);
    return false;
  }
  for (std::int64_t i = 0; i < missing; ++i) {
    table.push_back(free_.back());
    free_.pop_back();
  }
  return true;
}

void BlockAllocator::release(SequenceId sequence) {
  auto it = tables_.find(sequence);
  if (it == tables_.end()) return;
  for (auto block = it->second.rbegin(); block != it->second.rend(); ++block)
    free_.push_back(*block);
  tables_.erase(it);
}

std::span<const std::int32_t> BlockAllocator::block_table(SequenceId sequence) const {
  auto it = tables_.find(sequence);
  if (it == tables_.end()) return {};
  return it->second;
}

}  // namespace conveyor
