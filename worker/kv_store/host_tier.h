// The host-memory tier: one page-aligned pool allocated at construction, cut into
// slots of one block each. Pages are committed by the operating system on first write,
// not at construction.
#pragma once

#include "worker/kv_store/aligned_buffer.h"
#include "worker/kv_store/slotted_kv_tier.h"

namespace conveyor {

class HostTier final : public SlottedKvTier {
 public:
  // As many slots as `budget_bytes` holds, each `block_bytes` rounded up to
  // kKvSlotAlignment. Throws Error(kInvalidArgument) when the budget holds no slot,
  // Error(kResourceExhausted) when the host cannot allocate the pool.
  HostTier(std::uint64_t block_bytes, std::uint64_t budget_bytes);

  std::string name() const override { return "host"; }
  Status write(std::int64_t slot, std::span<const std::byte> block) override;
  Status read(std::int64_t slot, std::span<std::byte> block) override;

 private:
  std::byte* slot_data(std::int64_t slot) const;

  AlignedBuffer pool_;
};

}  // namespace conveyor
