// KvSwapper: carries out the K/V swaps of a StepPlan on one stage. A sequence the
// scheduler preempts by swapping has its blocks copied from the device cache into slots
// of a tier (host memory or disk), and later back into whatever device blocks the plan
// gives it then; the swapper remembers which slots hold which sequence in between.
//
// The disk tier's I/O overlaps compute: a swap-out copies the blocks off the device
// into host buffers and queues their writes (write-behind), so the step goes on at
// once; prefetch() starts reading a later plan's swap-ins while this step computes
// (read-ahead). A swap-in waits only for what is still in flight.
//
// With a device backend, the host memory that blocks cross is pinned for it: the host
// tier's pool once at construction (which commits all its pages then), and the disk
// path's buffers as they are made. Blocks move between the device and the host tier's
// slots directly, without a copy through other host memory.
//
// The coordinator's ledger decides what fits where, identically for every stage; a
// swap this stage cannot carry out (no such tier, no free slot, a sequence it does not
// hold) is therefore a bug, Error(kInternal), not a request's failure.
//
// Not thread-safe: one stage thread calls it (the I/O thread works beneath it).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "worker/kv_cache.h"
#include "worker/kv_store/aligned_buffer.h"
#include "worker/kv_store/host_tier.h"
#include "worker/kv_store/io_queue.h"
#include "worker/kv_store/kv_tier.h"
#include "worker/step_plan.h"

namespace conveyor {

// The tiers a stage swaps into, in blocks (slots) each; 0: no such tier.
struct KvSwapTiers {
  std::int64_t host_blocks = 0;
  std::int64_t disk_blocks = 0;
  std::string disk_dir;  // where the disk tier's file lives (required with disk_blocks)
};

class KvSwapper {
 public:
  // Creates the tiers, sized for blocks of `cache`, their host memory pinned for the
  // cache's backend where it pins (Backend::pin_host_memory). Throws
  // Error(kInvalidArgument) for negative sizes or disk blocks without a directory, and
  // as HostTier and DiskTier do.
  KvSwapper(KvCache& cache, const KvSwapTiers& tiers);
  ~KvSwapper();  // finishes the queued I/O first
  KvSwapper(const KvSwapper&) = delete;
  KvSwapper& operator=(const KvSwapper&) = delete;

  // Copies one sequence's blocks out to the tier or back in, or drops them there. Throws
  // Error(kInternal) for a swap the ledger should never have planned (absent or full tier, a
  // sequence already out, or not out there with as many blocks), leaving nothing taken; a tier that
  // fails to write or read throws its Status as Error (a disk write that failed behind the step is
  // reported by the swap-in that needs it).
  void apply(const KvSwap& swap);
  // Starts reading the blocks of a swap-in from disk into host memory, for a later
  // apply() of the same swap. Ignores what it cannot read ahead (another tier, a
  // sequence not out yet, no buffer to spare): apply() then reads it itself.
  void prefetch(const KvSwap& swap);
  // Frees the slots of a sequence that left while swapped out; others are ignored.
  void release(std::int64_t sequence);

  std::int64_t used_blocks(KvTierId tier) const;
  std::int64_t capacity_blocks(KvTierId tier) const;
  std::int64_t swapped_sequences() const { return static_cast<std::int64_t>(swapped_.size()); }
  // By the swaps that completed, out and in together.
  std::uint64_t bytes_moved() const { return bytes_moved_; }
  // Swap-ins whose blocks were already read ahead when they were applied.
  std::int64_t prefetched_swaps() const { return prefetched_swaps_; }
  // Whether the host tier's pool is pinned for the backend (false without a host tier).
  bool host_tier_pinned() const { return host_ != nullptr && host_->pinned(); }

 private:
  using Buffer = std::shared_ptr<AlignedBuffer>;
  struct Swapped {
    KvTierId tier = KvTierId::kHost;
    std::vector<std::int64_t> slots;  // in the sequence's block-table order
    std::uint64_t last_ticket = 0;    // its I/O queued last (0: none)
    // The first failure of its queued I/O, written by the I/O thread before its ticket
    // completes.
    std::shared_ptr<Status> io_status = std::make_shared<Status>();
    std::vector<Buffer> read_ahead;  // one per slot once prefetched
  };

  KvTier* tier(KvTierId id) const;  // nullptr when absent
  // disk_mutex_ held for the disk tier; nothing for the host tier.
  std::unique_lock<std::mutex> lock_tier(KvTierId id) const;
  void swap_out(const KvSwap& swap);
  void swap_in(const KvSwap& swap);
  // Returns the sequence's slots and buffers once its queued I/O has run.
  void give_back(Swapped& swapped);
  // A block-sized buffer: a spare one, else a new one. With `cap` buffers already out
  // in queued writes, waits for those first, so that write-behind stays bounded.
  Buffer take_buffer();
  void return_buffer(Buffer buffer);

  KvCache& cache_;
  std::uint64_t block_bytes_ = 0;
  PinHostMemory pin_;  // for the cache's backend
  std::unique_ptr<HostTier> host_;
  std::unique_ptr<KvTier> disk_;
  // The disk tier's bookkeeping and I/O, shared by the stage and the I/O thread; the
  // host tier is the stage's alone.
  mutable std::mutex disk_mutex_;
  // One block, page-aligned: with blocks of whole pages, a disk tier with O_DIRECT
  // moves it without a bounce copy. The disk path's swap-ins that were not read ahead
  // pass through it.
  AlignedBuffer staging_;
  std::mutex buffers_mutex_;
  std::vector<Buffer> spare_buffers_;
  std::int64_t buffers_out_ = 0;  // taken and not returned
  std::int64_t buffer_cap_ = 0;
  std::unordered_map<std::int64_t, Swapped> swapped_;
  std::uint64_t bytes_moved_ = 0;
  std::int64_t prefetched_swaps_ = 0;
  // Last: destroyed first, so its jobs finish while the tiers and buffers still exist.
  std::unique_ptr<IoQueue> io_;
};

}  // namespace conveyor
