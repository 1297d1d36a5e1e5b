#include "worker/kv_store/host_tier.h"

#include <cstring>

namespace conveyor {

HostTier::HostTier(std::uint64_t block_bytes, std::uint64_t budget_bytes)
    : SlottedKvTier(block_bytes, budget_bytes), pool_(storage_bytes(), kKvSlotAlignment) {}

std::byte* HostTier::slot_data(std::int64_t slot) const {
  return pool_.data() + slot_offset(slot);
}

Status HostTier::write(std::int64_t slot, std::span<const std::byte> block) {
  Status status = slots().begin_write(slot, block.size());
  if (!status.ok()) return status;
  std::memcpy(slot_data(slot), block.data(), block.size());
  slots().finish_write(slot);
  return status;
}

Status HostTier::read(std::int64_t slot, std::span<std::byte> block) {
  Status status = slots().check_read(slot, block.size());
  if (!status.ok()) return status;
  std::memcpy(block.data(), slot_data(slot), block.size());
  return status;
}

}  // namespace conveyor
