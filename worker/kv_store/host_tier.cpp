#include "worker/kv_store/host_tier.h"

#include <cstring>

namespace conveyor {

HostTier::HostTier(std::uint64_t block_bytes, std::uint64_t budget_bytes, const PinHostMemory& pin)
    : SlottedKvTier(block_bytes, budget_bytes), pool_(storage_bytes(), kKvSlotAlignment) {
  pool_.pin(pin);
}

std::byte* HostTier::slot_data(std::int64_t slot) const {
  return pool_.data() + slot_offset(slot);
}

Status HostTier::write(std::int64_t slot, std::span<const std::byte> block) {
  return write_in_place(slot, block.size(), [&](std::span<std::byte> to) {
    std::memcpy(to.data(), block.data(), block.size());
  });
}

Status HostTier::read(std::int64_t slot, std::span<std::byte> block) {
  return read_in_place(slot, block.size(), [&](std::span<const std::byte> from) {
    std::memcpy(block.data(), from.data(), block.size());
  });
}

Status HostTier::write_in_place(std::int64_t slot, std::size_t bytes,
                                const std::function<void(std::span<std::byte>)>& fill) {
  Status status = slots().begin_write(slot, bytes);
  if (!status.ok()) return status;
  fill({slot_data(slot), bytes});
  slots().finish_write(slot);
  return status;
}

Status HostTier::read_in_place(std::int64_t slot, std::size_t bytes,
                               const std::function<void(std::span<const std::byte>)>& drain) {
  Status status = slots().check_read(slot, bytes);
  if (!status.ok()) return status;
  drain({slot_data(slot), bytes});
  return status;
}

}  // namespace conveyor
