// The disk tier: one file of preallocated block slots in a scratch directory (NVMe).
// The file lives exactly as long as the object; files that an earlier process left
// behind (a crash) are removed at construction, so they neither leak disk nor ever
// serve stale blocks.
//
// I/O goes through O_DIRECT when the file system accepts it (direct()), so swapped
// blocks do not evict the page cache that weights are read through; otherwise it is
// buffered. Durability is not needed: the blocks never outlive the process.
#pragma once

#include <filesystem>

#include "worker/kv_store/aligned_buffer.h"
#include "worker/kv_store/block_file.h"
#include "worker/kv_store/slotted_kv_tier.h"

namespace conveyor {

class DiskTier final : public SlottedKvTier {
 public:
  // As many slots as `budget_bytes` holds, each `block_bytes` rounded up to
  // kKvSlotAlignment, in a new file in `directory` (see BlockFile::create).
  // Throws Error: kInvalidArgument when the budget holds no slot, kResourceExhausted
  // naming the file when the file system has no room for it, kIo otherwise.
  DiskTier(const std::filesystem::path& directory, std::uint64_t block_bytes,
           std::uint64_t budget_bytes);

  std::string name() const override { return "disk"; }
  // I/O errors name the file and offset: kResourceExhausted when the disk is full (the
  // caller recomputes those blocks instead), kIo otherwise.
  Status write(std::int64_t slot, std::span<const std::byte> block) override;
  Status read(std::int64_t slot, std::span<std::byte> block) override;

  const std::filesystem::path& path() const { return file_.path(); }
  bool direct() const { return file_.direct(); }  // O_DIRECT rather than the page cache

 private:
  // O_DIRECT moves whole aligned slots between aligned memory; anything else goes
  // through bounce_.
  bool needs_bounce(const void* data) const;

  BlockFile file_;
  AlignedBuffer bounce_;
};

}  // namespace conveyor
