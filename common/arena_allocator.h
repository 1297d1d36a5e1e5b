// ArenaAllocator: offsets into one region reserved once (a device memory pool), so
// that nothing calls the driver's allocator while steps run. First fit over a free
// list kept sorted by offset; a freed range merges with its free neighbours, so the
// region never fragments into pieces smaller than what was freed together. Host-side
// bookkeeping only: the region itself belongs to the caller.
#pragma once

#include <cstdint>
#include <map>
#include <optional>

namespace conveyor {

class ArenaAllocator {
 public:
  // `capacity` bytes; every offset handed out is a multiple of `alignment` (a power of two).
  ArenaAllocator(std::uint64_t capacity, std::uint64_t alignment);

  // The offset of `bytes` free bytes (at least one alignment unit), or nullopt when no
  // free range is large enough.
  std::optional<std::uint64_t> allocate(std::uint64_t bytes);
  // Returns a range that allocate() handed out. Throws Error(kInternal) for an offset
  // it does not hold: a double free would otherwise corrupt the pool silently.
  void release(std::uint64_t offset);

  std::uint64_t capacity() const { return capacity_; }
  std::uint64_t used() const { return used_; }
  std::uint64_t available() const { return capacity_ - used_; }
  std::uint64_t largest_free() const;
  std::size_t free_ranges() const { return free_.size(); }

 private:
  std::uint64_t round_up(std::uint64_t bytes) const;

  std::uint64_t capacity_;
  std::uint64_t alignment_;
  std::uint64_t used_ = 0;
  std::map<std::uint64_t, std::uint64_t> free_;  // offset -> length
  std::map<std::uint64_t, std::uint64_t> held_;  // offset -> length
};

}  // namespace conveyor
