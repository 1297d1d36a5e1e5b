#include "worker/kv_store/disk_tier.h"

#include <cstring>

namespace conveyor {

namespace {

std::int64_t slots_in_budget(std::uint64_t block_bytes, std::uint64_t budget_bytes) {
  if (block_bytes == 0) fail(ErrorCode::kInvalidArgument, "a K/V block cannot be empty");
  return static_cast<std::int64_t>(budget_bytes / round_up(block_bytes, kKvSlotAlignment));
}

}  // namespace

DiskTier::DiskTier(const std::filesystem::path& directory, std::uint64_t block_bytes,
                   std::uint64_t budget_bytes)
    : block_bytes_(block_bytes),
      slot_stride_(round_up(block_bytes, kKvSlotAlignment)),
      slots_(slots_in_budget(block_bytes, budget_bytes), block_bytes),
      file_(BlockFile::create(directory,
                              static_cast<std::uint64_t>(slots_.capacity()) * slot_stride_)),
      bounce_(slot_stride_, kKvSlotAlignment) {}

std::uint64_t DiskTier::slot_offset(std::int64_t slot) const {
  return static_cast<std::uint64_t>(slot) * slot_stride_;
}

bool DiskTier::needs_bounce(const void* data) const {
  return file_.direct() && (block_bytes_ != slot_stride_ ||
                            reinterpret_cast<std::uintptr_t>(data) % kKvSlotAlignment != 0);
}

Status DiskTier::write(std::int64_t slot, std::span<const std::byte> block) {
  Status status = slots_.begin_write(slot, block.size());
  if (!status.ok()) return status;
  if (needs_bounce(block.data())) {
    std::memcpy(bounce_.data(), block.data(), block.size());
    // The slot's tail past the block is written too (O_DIRECT moves whole pages); zeroed
    // so that no earlier heap content reaches the disk.
    std::memset(bounce_.data() + block.size(), 0, slot_stride_ - block.size());
    status = file_.write_at(slot_offset(slot), bounce_.data(), slot_stride_);
  } else {
    status = file_.write_at(slot_offset(slot), block.data(), block.size());
  }
  if (status.ok()) slots_.finish_write(slot);
  return status;
}

Status DiskTier::read(std::int64_t slot, std::span<std::byte> block) {
  Status status = slots_.check_read(slot, block.size());
  if (!status.ok()) return status;
  if (!needs_bounce(block.data()))
    return file_.read_at(slot_offset(slot), block.data(), block.size());
  status = file_.read_at(slot_offset(slot), bounce_.data(), slot_stride_);
  if (status.ok()) std::memcpy(block.data(), bounce_.data(), block.size());
  return status;
}

}  // namespace conveyor
