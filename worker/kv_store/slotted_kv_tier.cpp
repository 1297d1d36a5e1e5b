#include "worker/kv_store/slotted_kv_tier.h"

#include "worker/kv_store/aligned_buffer.h"

namespace conveyor {
namespace {

std::int64_t slots_in_budget(std::uint64_t block_bytes, std::uint64_t budget_bytes) {
  if (block_bytes == 0) fail(ErrorCode::kInvalidArgument, "a K/V block cannot be empty");
  return static_cast<std::int64_t>(budget_bytes / round_up(block_bytes, kKvSlotAlignment));
}

}  // namespace

SlottedKvTier::SlottedKvTier(std::uint64_t block_bytes, std::uint64_t budget_bytes)
    : block_bytes_(block_bytes),
      slot_stride_(round_up(block_bytes, kKvSlotAlignment)),
      slots_(slots_in_budget(block_bytes, budget_bytes), block_bytes) {}

}  // namespace conveyor
