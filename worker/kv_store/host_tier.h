// The host-memory tier: one page-aligned pool allocated at construction, cut into
// slots of one block each. Pages are committed by the operating system on first write,
// not at construction.
#pragma once

#include "worker/kv_store/aligned_buffer.h"
#include "worker/kv_store/kv_tier.h"
#include "worker/kv_store/slot_table.h"

namespace conveyor {

class HostTier final : public KvTier {
 public:
  // As many slots as `budget_bytes` holds, each `block_bytes` rounded up to
  // kKvSlotAlignment. Throws Error(kInvalidArgument) when the budget holds no slot,
  // Error(kResourceExhausted) when the host cannot allocate the pool.
  HostTier(std::uint64_t block_bytes, std::uint64_t budget_bytes);

  std::string name() const override { return "host"; }
  std::uint64_t block_bytes() const override { return block_bytes_; }
  std::int64_t capacity_blocks() const override { return slots_.capacity(); }
  std::int64_t used_blocks() const override { return slots_.used(); }
  std::optional<std::int64_t> allocate() override { return slots_.allocate(); }
  void release(std::int64_t slot) override { slots_.release(slot); }
  Status write(std::int64_t slot, std::span<const std::byte> block) override;
  Status read(std::int64_t slot, std::span<std::byte> block) override;

 private:
  std::byte* slot_data(std::int64_t slot) const;

  std::uint64_t block_bytes_;
  std::uint64_t slot_stride_;
  SlotTable slots_;
  AlignedBuffer pool_;
};

}  // namespace conveyor
