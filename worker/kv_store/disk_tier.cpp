#include "worker/kv_store/disk_tier.h"

#include <cstring>

namespace conveyor {

DiskTier::DiskTier(const std::filesystem::path& directory, std::uint64_t block_bytes,
                   std::uint64_t budget_bytes)
    : SlottedKvTier(block_bytes, budget_bytes),
      file_(BlockFile::create(directory, storage_bytes())),
      bounce_(slot_stride(), kKvSlotAlignment) {}

bool DiskTier::needs_bounce(const void* data) const {
  return file_.direct() && (block_bytes() != slot_stride() ||
                            reinterpret_cast<std::uintptr_t>(data) % kKvSlotAlignment != 0);
}

Status DiskTier::write(std::int64_t slot, std::span<const std::byte> block) {
  Status status = slots().begin_write(slot, block.size());
  if (!status.ok()) return status;
  if (needs_bounce(block.data())) {
    std::memcpy(bounce_.data(), block.data(), block.size());
    // The slot's tail past the block is written too (O_DIRECT moves whole pages); zeroed
    // so that no earlier heap content reaches the disk.
    std::memset(bounce_.data() + block.size(), 0, slot_stride() - block.size());
    status = file_.write_at(slot_offset(slot), bounce_.data(), slot_stride());
  } else {
    status = file_.write_at(slot_offset(slot), block.data(), block.size());
  }
  if (status.ok()) slots().finish_write(slot);
  return status;
}

Status DiskTier::read(std::int64_t slot, std::span<std::byte> block) {
  Status status = slots().check_read(slot, block.size());
  if (!status.ok()) return status;
  if (!needs_bounce(block.data()))
    return file_.read_at(slot_offset(slot), block.data(), block.size());
  status = file_.read_at(slot_offset(slot), bounce_.data(), slot_stride());
  if (status.ok()) std::memcpy(block.data(), bounce_.data(), block.size());
  return status;
}

}  // namespace conveyor
