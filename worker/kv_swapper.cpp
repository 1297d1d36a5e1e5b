#include "worker/kv_swapper.h"

#include <span>

#include "worker/kv_store/disk_tier.h"
#include "worker/kv_store/host_tier.h"

namespace conveyor {
namespace {

std::string sequence_name(const KvSwap& swap) {
  return "kv swap: sequence " + std::to_string(swap.sequence);
}

// Budgets in bytes that hold exactly `blocks` slots.
std::uint64_t budget_bytes(std::uint64_t block_bytes, std::int64_t blocks) {
  return round_up(block_bytes, kKvSlotAlignment) * static_cast<std::uint64_t>(blocks);
}

}  // namespace

KvSwapper::KvSwapper(KvCache& cache, const KvSwapTiers& tiers) : cache_(cache) {
  if (tiers.host_blocks < 0 || tiers.disk_blocks < 0) {
    fail(ErrorCode::kInvalidArgument, "kv swap: tier sizes cannot be negative");
  }
  if (tiers.disk_blocks > 0 && tiers.disk_dir.empty()) {
    fail(ErrorCode::kInvalidArgument, "kv swap: a disk tier needs a directory");
  }
  const std::uint64_t block_bytes = kv_block_bytes(cache.config());
  if (tiers.host_blocks > 0) {
    host_ = std::make_unique<HostTier>(block_bytes, budget_bytes(block_bytes, tiers.host_blocks));
  }
  if (tiers.disk_blocks > 0) {
    disk_ = std::make_unique<DiskTier>(tiers.disk_dir, block_bytes,
                                       budget_bytes(block_bytes, tiers.disk_blocks));
  }
  if (host_ || disk_) staging_ = AlignedBuffer(block_bytes, kKvSlotAlignment);
}

KvSwapper::~KvSwapper() = default;

KvTier* KvSwapper::tier(KvTierId id) const {
  return id == KvTierId::kDisk ? disk_.get() : host_.get();
}

std::int64_t KvSwapper::used_blocks(KvTierId id) const {
  const KvTier* t = tier(id);
  return t != nullptr ? t->used_blocks() : 0;
}

std::int64_t KvSwapper::capacity_blocks(KvTierId id) const {
  const KvTier* t = tier(id);
  return t != nullptr ? t->capacity_blocks() : 0;
}

void KvSwapper::apply(const KvSwap& swap) {
  if (swap.direction == KvSwap::Direction::kOut) {
    swap_out(swap);
  } else {
    swap_in(swap);
  }
}

void KvSwapper::swap_out(const KvSwap& swap) {
  KvTier* to = tier(swap.tier);
  const std::string where = std::string(tier_name(swap.tier));
  if (to == nullptr) {
    fail(ErrorCode::kInternal,
         sequence_name(swap) + " to the " + where + " tier, which this worker does not have");
  }
  if (swapped_.contains(swap.sequence)) {
    fail(ErrorCode::kInternal, sequence_name(swap) + " swapped out while already out");
  }
  Swapped out{swap.tier, {}};
  out.slots.reserve(swap.blocks.size());
  // Whatever this call has taken goes back if it fails part-way.
  struct GiveBack {
    KvTier& tier;
    std::vector<std::int64_t>* slots;
    ~GiveBack() {
      if (slots == nullptr) return;
      for (std::int64_t slot : *slots)
        tier.release(slot);
    }
  } give_back{*to, &out.slots};

  const auto needed = static_cast<std::int64_t>(swap.blocks.size());
  if (to->capacity_blocks() - to->used_blocks() < needed) {
    fail(ErrorCode::kInternal, sequence_name(swap) + ": the " + where + " tier has no room for " +
                                   std::to_string(needed) + " blocks (" +
                                   std::to_string(to->capacity_blocks()) + " slots, " +
                                   std::to_string(to->used_blocks()) + " used)");
  }
  const std::span<std::byte> block = staging_.bytes().first(to->block_bytes());
  for (std::int32_t device_block : swap.blocks) {
    const std::optional<std::int64_t> slot = to->allocate();
    if (!slot) fail(ErrorCode::kInternal, sequence_name(swap) + ": the " + where + " tier is full");
    out.slots.push_back(*slot);
    cache_.read_block(device_block, block);
    const Status written = to->write(*slot, block);
    if (!written.ok()) {
      fail(written.code(),
           sequence_name(swap) + " to the " + where + " tier: " + written.message());
    }
  }
  give_back.slots = nullptr;
  bytes_moved_ += block.size() * swap.blocks.size();
  swapped_.emplace(swap.sequence, std::move(out));
}

void KvSwapper::swap_in(const KvSwap& swap) {
  const std::string where = std::string(tier_name(swap.tier));
  const auto it = swapped_.find(swap.sequence);
  if (it == swapped_.end() || it->second.tier != swap.tier) {
    fail(ErrorCode::kInternal,
         sequence_name(swap) + " swapped in from the " + where + " tier, where it is not");
  }
  const std::vector<std::int64_t>& slots = it->second.slots;
  if (slots.size() != swap.blocks.size()) {
    fail(ErrorCode::kInternal, sequence_name(swap) + " swapped in to " +
                                   std::to_string(swap.blocks.size()) + " blocks, but " +
                                   std::to_string(slots.size()) + " went out");
  }
  KvTier& from = *tier(swap.tier);
  const std::span<std::byte> block = staging_.bytes().first(from.block_bytes());
  for (std::size_t i = 0; i < slots.size(); ++i) {
    const Status read = from.read(slots[i], block);
    if (!read.ok()) {
      fail(read.code(), sequence_name(swap) + " from the " + where + " tier: " + read.message());
    }
    cache_.write_block(swap.blocks[i], block);
  }
  bytes_moved_ += block.size() * slots.size();
  release(swap.sequence);
}

void KvSwapper::release(std::int64_t sequence) {
  const auto it = swapped_.find(sequence);
  if (it == swapped_.end()) return;
  KvTier& t = *tier(it->second.tier);
  for (std::int64_t slot : it->second.slots)
    t.release(slot);
  swapped_.erase(it);
}

}  // namespace conveyor
