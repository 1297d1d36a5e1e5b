// What the host and disk tiers share: as many slots as a budget holds, each one block
// rounded up to kKvSlotAlignment, and their bookkeeping (SlotTable). A tier adds where
// the slots' bytes live and how they move.
#pragma once

#include "worker/kv_store/kv_tier.h"
#include "worker/kv_store/slot_table.h"

namespace conveyor {

class SlottedKvTier : public KvTier {
 public:
  std::uint64_t block_bytes() const final { return block_bytes_; }
  std::int64_t capacity_blocks() const final { return slots_.capacity(); }
  std::int64_t used_blocks() const final { return slots_.used(); }
  std::optional<std::int64_t> allocate() final { return slots_.allocate(); }
  void release(std::int64_t slot) final { slots_.release(slot); }

 protected:
  // Throws Error(kInvalidArgument) for an empty block or a budget that holds no slot.
  SlottedKvTier(std::uint64_t block_bytes, std::uint64_t budget_bytes);

  std::uint64_t slot_stride() const { return slot_stride_; }
  std::uint64_t slot_offset(std::int64_t slot) const {
    return static_cast<std::uint64_t>(slot) * slot_stride_;
  }
  // The bytes every slot takes together: the size of the tier's pool or file.
  std::uint64_t storage_bytes() const {
    return static_cast<std::uint64_t>(slots_.capacity()) * slot_stride_;
  }
  SlotTable& slots() { return slots_; }
  const SlotTable& slots() const { return slots_; }

 private:
  std::uint64_t block_bytes_;
  std::uint64_t slot_stride_;
  SlotTable slots_;
};

}  // namespace conveyor
