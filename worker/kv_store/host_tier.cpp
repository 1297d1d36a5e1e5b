#include "worker/kv_store/host_tier.h"

#include <cstring>

namespace conveyor {

namespace {

std::int64_t slots_in_budget(std::uint64_t block_bytes, std::uint64_t budget_bytes) {
  if (block_bytes == 0) fail(ErrorCode::kInvalidArgument, "a K/V block cannot be empty");
  return static_cast<std::int64_t>(budget_bytes / round_up(block_bytes, kKvSlotAlignment));
}

}  // namespace

HostTier::HostTier(std::uint64_t block_bytes, std::uint64_t budget_bytes)
    : block_bytes_(block_bytes),
      slot_stride_(round_up(block_bytes, kKvSlotAlignment)),
      slots_(slots_in_budget(block_bytes, budget_bytes), block_bytes),
      pool_(static_cast<std::uint64_t>(slots_.capacity()) * slot_stride_, kKvSlotAlignment) {}

std::byte* HostTier::slot_data(std::int64_t slot) const {
  return pool_.data() + static_cast<std::uint64_t>(slot) * slot_stride_;
}

Status HostTier::write(std::int64_t slot, std::span<const std::byte> block) {
  Status status = slots_.begin_write(slot, block.size());
  if (!status.ok()) return status;
  std::memcpy(slot_data(slot), block.data(), block.size());
  slots_.finish_write(slot);
  return status;
}

Status HostTier::read(std::int64_t slot, std::span<std::byte> block) {
  Status status = slots_.check_read(slot, block.size());
  if (!status.ok()) return status;
  std::memcpy(block.data(), slot_data(slot), block.size());
  return status;
}

}  // namespace conveyor
