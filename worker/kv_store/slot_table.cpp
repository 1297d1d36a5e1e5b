#include "worker/kv_store/slot_table.h"

#include <string>

namespace conveyor {

SlotTable::SlotTable(std::int64_t capacity, std::uint64_t block_bytes) : block_bytes_(block_bytes) {
  if (capacity <= 0 || block_bytes == 0) {
    fail(ErrorCode::kInvalidArgument, "a K/V tier needs at least one slot of a non-empty block");
  }
  states_.assign(static_cast<std::size_t>(capacity), SlotState::kFree);
  free_.reserve(states_.size());
  // Pushed in reverse so that a fresh table hands out slot 0 first.
  for (std::int64_t slot = capacity - 1; slot >= 0; --slot)
    free_.push_back(slot);
}

std::optional<std::int64_t> SlotTable::allocate() {
  if (free_.empty()) return std::nullopt;
  const std::int64_t slot = free_.back();
  free_.pop_back();
  states_[static_cast<std::size_t>(slot)] = SlotState::kAllocated;
  return slot;
}

void SlotTable::release(std::int64_t slot) {
  if (slot < 0 || slot >= capacity() ||
      states_[static_cast<std::size_t>(slot)] == SlotState::kFree) {
    fail(ErrorCode::kInvalidArgument,
         "K/V slot " + std::to_string(slot) + " released but not allocated");
  }
  states_[static_cast<std::size_t>(slot)] = SlotState::kFree;
  free_.push_back(slot);
}

Status SlotTable::check_allocated(std::int64_t slot, std::size_t bytes) const {
  if (bytes != block_bytes_) {
    return Status(ErrorCode::kInvalidArgument, "a K/V block is " + std::to_string(block_bytes_) +
                                                   " bytes, not " + std::to_string(bytes));
  }
  if (slot < 0 || slot >= capacity() ||
      states_[static_cast<std::size_t>(slot)] == SlotState::kFree) {
    return Status(ErrorCode::kInvalidArgument,
                  "K/V slot " + std::to_string(slot) + " is not allocated");
  }
  return Status::ok_status();
}

Status SlotTable::begin_write(std::int64_t slot, std::size_t bytes) {
  Status status = check_allocated(slot, bytes);
  if (status.ok()) states_[static_cast<std::size_t>(slot)] = SlotState::kAllocated;
  return status;
}

void SlotTable::finish_write(std::int64_t slot) {
  states_[static_cast<std::size_t>(slot)] = SlotState::kWritten;
}

Status SlotTable::check_read(std::int64_t slot, std::size_t bytes) const {
  Status status = check_allocated(slot, bytes);
  if (status.ok() && states_[static_cast<std::size_t>(slot)] != SlotState::kWritten) {
    return Status(ErrorCode::kNotFound,
                  "K/V slot " + std::to_string(slot) + " holds no block written since allocation");
  }
  return status;
}

}  // namespace conveyor
