#include "worker/kv_swapper.h"

#include <algorithm>
#include <span>

#include "common/log/log.h"
#include "worker/host_pinning.h"
#include "worker/kv_store/disk_tier.h"

namespace conveyor {
namespace {

std::string sequence_name(const KvSwap& swap) {
  return "kv swap: sequence " + std::to_string(swap.sequence);
}

// Budgets in bytes that hold exactly `blocks` slots.
std::uint64_t budget_bytes(std::uint64_t block_bytes, std::int64_t blocks) {
  return round_up(block_bytes, kKvSlotAlignment) * static_cast<std::uint64_t>(blocks);
}

// Host memory that queued disk writes may hold at once.
constexpr std::uint64_t kWriteBehindBytes = 256ull << 20;

}  // namespace

KvSwapper::KvSwapper(KvCache& cache, const KvSwapTiers& tiers)
    : cache_(cache),
      block_bytes_(kv_block_bytes(cache.config())),
      pin_(host_pinner(cache.backend())) {
  if (tiers.host_blocks < 0 || tiers.disk_blocks < 0) {
    fail(ErrorCode::kInvalidArgument, "kv swap: tier sizes cannot be negative");
  }
  if (tiers.disk_blocks > 0 && tiers.disk_dir.empty()) {
    fail(ErrorCode::kInvalidArgument, "kv swap: a disk tier needs a directory");
  }
  if (tiers.host_blocks > 0) {
    // The whole pool is pinned here, once: pinning is slow (the driver locks it page by
    // page) and commits every page now, so a pool of a few GiB costs its memory and a
    // second or so at start rather than a registration per swap.
    host_ = std::make_unique<HostTier>(block_bytes_, budget_bytes(block_bytes_, tiers.host_blocks),
                                       pin_);
    if (host_->pinned()) {
      const Backend& backend = cache.backend();
      log::info(logger("kv"),
                "kv swap: host tier of " + std::to_string(host_->capacity_blocks()) + " blocks (" +
                    std::to_string(host_->pool_bytes() >> 20) + " MiB) pinned for " +
                    backend.name() + "; registered once at start, which commits all its pages",
                {{"blocks", host_->capacity_blocks()}, {"bytes", host_->pool_bytes()}});
    }
  }
  if (tiers.disk_blocks > 0) {
    disk_ = std::make_unique<DiskTier>(tiers.disk_dir, block_bytes_,
                                       budget_bytes(block_bytes_, tiers.disk_blocks));
    buffer_cap_ =
        std::max<std::int64_t>(4, static_cast<std::int64_t>(kWriteBehindBytes / block_bytes_));
    io_ = std::make_unique<IoQueue>();
  }
  if (disk_) {
    staging_ = AlignedBuffer(block_bytes_, kKvSlotAlignment);
    staging_.pin(pin_);
  }
}

KvSwapper::~KvSwapper() {
  io_.reset();  // its jobs use the tiers and the buffers
}

KvTier* KvSwapper::tier(KvTierId id) const {
  return id == KvTierId::kDisk ? disk_.get() : host_.get();
}

std::unique_lock<std::mutex> KvSwapper::lock_tier(KvTierId id) const {
  return id == KvTierId::kDisk ? std::unique_lock(disk_mutex_) : std::unique_lock<std::mutex>();
}

std::int64_t KvSwapper::used_blocks(KvTierId id) const {
  const auto lock = lock_tier(id);
  const KvTier* t = tier(id);
  return t != nullptr ? t->used_blocks() : 0;
}

std::int64_t KvSwapper::capacity_blocks(KvTierId id) const {
  const KvTier* t = tier(id);
  return t != nullptr ? t->capacity_blocks() : 0;
}

void KvSwapper::apply(const KvSwap& swap) {
  switch (swap.direction) {
    case KvSwap::Direction::kOut:
      swap_out(swap);
      break;
    case KvSwap::Direction::kIn:
      swap_in(swap);
      break;
    case KvSwap::Direction::kDrop:
      release(swap.sequence);
      break;
  }
}

KvSwapper::Buffer KvSwapper::take_buffer() {
  std::unique_lock lock(buffers_mutex_);
  if (buffers_out_ >= buffer_cap_ && io_) {
    lock.unlock();
    io_->wait_all();  // the writes hand their buffers back as they finish
    lock.lock();
  }
  ++buffers_out_;
  if (spare_buffers_.empty()) {
    // Pinned once as it is made: buffers are reused, up to the cap, for the run.
    auto buffer = std::make_shared<AlignedBuffer>(block_bytes_, kKvSlotAlignment);
    buffer->pin(pin_);
    return buffer;
  }
  Buffer buffer = std::move(spare_buffers_.back());
  spare_buffers_.pop_back();
  return buffer;
}

void KvSwapper::return_buffer(Buffer buffer) {
  std::lock_guard lock(buffers_mutex_);
  --buffers_out_;
  spare_buffers_.push_back(std::move(buffer));
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
  Swapped out;
  out.tier = swap.tier;
  out.slots.reserve(swap.blocks.size());
  {
    const auto lock = lock_tier(swap.tier);
    const auto needed = static_cast<std::int64_t>(swap.blocks.size());
    if (to->capacity_blocks() - to->used_blocks() < needed) {
      fail(ErrorCode::kInternal, sequence_name(swap) + ": the " + where + " tier has no room for " +
                                     std::to_string(needed) + " blocks (" +
                                     std::to_string(to->capacity_blocks()) + " slots, " +
                                     std::to_string(to->used_blocks()) + " used)");
    }
    for (std::size_t i = 0; i < swap.blocks.size(); ++i)
      out.slots.push_back(*to->allocate());
  }
  try {
    for (std::size_t i = 0; i < swap.blocks.size(); ++i) {
      if (swap.tier == KvTierId::kDisk) {
        // Off the device now (the block may be reused by this very step); to disk
        // behind the step.
        Buffer buffer = take_buffer();
        const std::span<std::byte> block = buffer->bytes().first(block_bytes_);
        cache_.read_block(swap.blocks[i], block);
        out.last_ticket = io_->submit(
            [this, slot = out.slots[i], block, buffer, status = out.io_status]() mutable {
              Status written;
              {
                std::lock_guard lock(disk_mutex_);
                written = disk_->write(slot, block);
              }
              if (!written.ok() && status->ok()) *status = written;
              return_buffer(std::move(buffer));
            });
      } else {
        // Straight from the device into the slot: the pool is pinned for it.
        const Status written = host_->write_in_place(
            out.slots[i], block_bytes_,
            [&](std::span<std::byte> slot) { cache_.read_block(swap.blocks[i], slot); });
        if (!written.ok()) {
          fail(written.code(),
               sequence_name(swap) + " to the " + where + " tier: " + written.message());
        }
      }
    }
  } catch (...) {
    give_back(out);  // whatever this call took goes back
    throw;
  }
  bytes_moved_ += block_bytes_ * swap.blocks.size();
  swapped_.emplace(swap.sequence, std::move(out));
}

void KvSwapper::prefetch(const KvSwap& swap) {
  if (swap.direction != KvSwap::Direction::kIn || swap.tier != KvTierId::kDisk || !io_) return;
  const auto it = swapped_.find(swap.sequence);
  if (it == swapped_.end() || it->second.tier != KvTierId::kDisk ||
      !it->second.read_ahead.empty() || it->second.slots.size() != swap.blocks.size()) {
    return;
  }
  Swapped& out = it->second;
  {
    // Reading ahead takes at most half the buffers, so that write-behind keeps going.
    std::lock_guard lock(buffers_mutex_);
    if (buffers_out_ + static_cast<std::int64_t>(out.slots.size()) > buffer_cap_ / 2) return;
  }
  for (std::int64_t slot : out.slots) {
    Buffer buffer = take_buffer();
    out.read_ahead.push_back(buffer);
    out.last_ticket = io_->submit([this, slot, buffer, status = out.io_status] {
      Status read;
      {
        std::lock_guard lock(disk_mutex_);
        read = disk_->read(slot, buffer->bytes().first(block_bytes_));
      }
      if (!read.ok() && status->ok()) *status = read;
    });
  }
}

void KvSwapper::swap_in(const KvSwap& swap) {
  const std::string where = std::string(tier_name(swap.tier));
  const auto it = swapped_.find(swap.sequence);
  if (it == swapped_.end() || it->second.tier != swap.tier) {
    fail(ErrorCode::kInternal,
         sequence_name(swap) + " swapped in from the " + where + " tier, where it is not");
  }
  Swapped& out = it->second;
  if (out.slots.size() != swap.blocks.size()) {
    fail(ErrorCode::kInternal, sequence_name(swap) + " swapped in to " +
                                   std::to_string(swap.blocks.size()) + " blocks, but " +
                                   std::to_string(out.slots.size()) + " went out");
  }
  if (io_) io_->wait(out.last_ticket);
  if (!out.io_status->ok()) {
    fail(out.io_status->code(),
         sequence_name(swap) + " from the " + where + " tier: " + out.io_status->message());
  }
  const bool read_ahead = !out.read_ahead.empty();
  for (std::size_t i = 0; i < out.slots.size(); ++i) {
    Status read;
    if (swap.tier == KvTierId::kHost) {
      // Straight from the slot to the device.
      read = host_->read_in_place(out.slots[i], block_bytes_, [&](std::span<const std::byte> slot) {
        cache_.write_block(swap.blocks[i], slot);
      });
    } else if (read_ahead) {
      cache_.write_block(swap.blocks[i], out.read_ahead[i]->bytes().first(block_bytes_));
    } else {
      const std::span<std::byte> block = staging_.bytes().first(block_bytes_);
      {
        const auto lock = lock_tier(swap.tier);
        read = disk_->read(out.slots[i], block);
      }
      if (read.ok()) cache_.write_block(swap.blocks[i], block);
    }
    if (!read.ok()) {
      fail(read.code(), sequence_name(swap) + " from the " + where + " tier: " + read.message());
    }
  }
  if (read_ahead) ++prefetched_swaps_;
  bytes_moved_ += block_bytes_ * out.slots.size();
  release(swap.sequence);
}

void KvSwapper::give_back(Swapped& swapped) {
  if (io_) io_->wait(swapped.last_ticket);
  for (Buffer& buffer : swapped.read_ahead)
    return_buffer(std::move(buffer));
  swapped.read_ahead.clear();
  const auto lock = lock_tier(swapped.tier);
  KvTier& t = *tier(swapped.tier);
  for (std::int64_t slot : swapped.slots)
    t.release(slot);
  swapped.slots.clear();
}

void KvSwapper::release(std::int64_t sequence) {
  const auto it = swapped_.find(sequence);
  if (it == swapped_.end()) return;
  give_back(it->second);
  swapped_.erase(it);
}

}  // namespace conveyor
