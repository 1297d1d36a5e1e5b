// The host-memory tier: one page-aligned pool allocated at construction, cut into
// slots of one block each. Pages are committed by the operating system on first write,
// not at construction, unless the pool is pinned for a device: pinning commits (and
// locks) every page of the pool at once.
#pragma once

#include <functional>

#include "worker/kv_store/aligned_buffer.h"
#include "worker/kv_store/slotted_kv_tier.h"

namespace conveyor {

class HostTier final : public SlottedKvTier {
 public:
  // As many slots as `budget_bytes` holds, each `block_bytes` rounded up to
  // kKvSlotAlignment, the pool pinned with `pin` when given (once, whole; a refusal
  // leaves it unpinned). Throws Error(kInvalidArgument) when the budget holds no slot,
  // Error(kResourceExhausted) when the host cannot allocate the pool.
  HostTier(std::uint64_t block_bytes, std::uint64_t budget_bytes, const PinHostMemory& pin = {});

  std::string name() const override { return "host"; }
  Status write(std::int64_t slot, std::span<const std::byte> block) override;
  Status read(std::int64_t slot, std::span<std::byte> block) override;

  // write() and read() without a copy through the caller's memory: `fill` writes the
  // block straight into the slot, `drain` reads it straight from there (a device's DMA
  // to and from the pinned pool). The checks and Status are write()'s and read()'s; a
  // slot counts as written only once `fill` returns, so one that throws leaves the slot
  // unreadable (the exception goes on to the caller).
  Status write_in_place(std::int64_t slot, std::size_t bytes,
                        const std::function<void(std::span<std::byte>)>& fill);
  Status read_in_place(std::int64_t slot, std::size_t bytes,
                       const std::function<void(std::span<const std::byte>)>& drain);

  bool pinned() const { return pool_.pinned(); }
  std::uint64_t pool_bytes() const { return pool_.size(); }

 private:
  std::byte* slot_data(std::int64_t slot) const;

  AlignedBuffer pool_;
};

}  // namespace conveyor
