// KvSwapper: carries out the K/V swaps of a StepPlan on one stage. A sequence the
// scheduler preempts by swapping has its blocks copied from the device cache into slots
// of a tier (host memory or disk), and later back into whatever device blocks the plan
// gives it then; the swapper remembers which slots hold which sequence in between.
//
// The coordinator's ledger decides what fits where, identically for every stage; a
// swap this stage cannot carry out (no such tier, no free slot, a sequence it does not
// hold) is therefore a bug, Error(kInternal), not a request's failure.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "worker/kv_cache.h"
#include "worker/kv_store/aligned_buffer.h"
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
  // Creates the tiers, sized for blocks of `cache`. Throws Error(kInvalidArgument) for
  // negative sizes or disk blocks without a directory, and as HostTier and DiskTier do.
  KvSwapper(KvCache& cache, const KvSwapTiers& tiers);
  ~KvSwapper();
  KvSwapper(const KvSwapper&) = delete;
  KvSwapper& operator=(const KvSwapper&) = delete;

  // Copies one sequence's blocks out to the tier or back in. Throws Error(kInternal)
  // for a swap the ledger should never have planned (absent or full tier, a sequence
  // already out, or not out there with as many blocks), leaving nothing taken; a tier
  // that fails to write or read throws its Status as Error.
  void apply(const KvSwap& swap);
  // Frees the slots of a sequence that left while swapped out; others are ignored.
  void release(std::int64_t sequence);

  std::int64_t used_blocks(KvTierId tier) const;
  std::int64_t capacity_blocks(KvTierId tier) const;
  std::int64_t swapped_sequences() const { return static_cast<std::int64_t>(swapped_.size()); }
  // By the swaps that completed, out and in together.
  std::uint64_t bytes_moved() const { return bytes_moved_; }

 private:
  struct Swapped {
    KvTierId tier = KvTierId::kHost;
    std::vector<std::int64_t> slots;  // in the sequence's block-table order
  };

  KvTier* tier(KvTierId id) const;  // nullptr when absent
  void swap_out(const KvSwap& swap);
  void swap_in(const KvSwap& swap);

  KvCache& cache_;
  std::unique_ptr<KvTier> host_;
  std::unique_ptr<KvTier> disk_;
  // One block, page-aligned: with blocks of whole pages, a disk tier with O_DIRECT
  // moves it without a bounce copy.
  AlignedBuffer staging_;
  std::unordered_map<std::int64_t, Swapped> swapped_;
  std::uint64_t bytes_moved_ = 0;
};

}  // namespace conveyor
