#include "worker/kv_cache.h"

#include <algorithm>
#include <limits>
#include <string>
#include <vector>

#include "common/status.h"

namespace conveyor {

namespace {

// a * b, or Error(kOutOfRange) when it does not fit 64 bits.
std::uint64_t checked_mul(std::uint64_t a, std::uint64_t b) {
  std::uint64_t product = 0;
  if (__builtin_mul_overflow(a, b, &product)) {
    fail(ErrorCode::kOutOfRange, "kv cache: size overflows 64 bits");
  }
  return product;
}

}  // namespace

std::uint64_t kv_block_bytes(const KvCacheConfig& config) {
  std::uint64_t bytes = 2 * *dtype_bytes(config.dtype, 1);
  for (std::int64_t n : {config.num_layers, config.block_size, config.kv_dim}) {
    bytes = checked_mul(bytes, static_cast<std::uint64_t>(n));
  }
  return bytes;
}

KvCache::KvCache(Backend& backend, const KvCacheConfig& config)
    : backend_(backend), config_(config) {
  if (config.num_layers <= 0 || config.num_blocks <= 0 || config.block_size <= 0 ||
      config.kv_dim <= 0) {
    fail(ErrorCode::kInvalidArgument,
         "kv cache: layers, blocks, block size and width must be positive");
  }
  if (config.num_blocks > std::numeric_limits<std::int32_t>::max()) {
    fail(ErrorCode::kInvalidArgument, "kv cache: too many blocks for 32-bit block ids");
  }
  const std::vector<DType> kept = backend.capabilities().kv_dtypes;
  if (std::find(kept.begin(), kept.end(), config.dtype) == kept.end()) {
    fail(ErrorCode::kUnsupported, "kv cache: " + backend.name() + " does not keep K/V as " +
                                      std::string(dtype_name(config.dtype)));
  }
  const std::uint64_t bytes =
      checked_mul(kv_block_bytes(config) / 2, static_cast<std::uint64_t>(config.num_blocks));
  // Refuse up front what the backend cannot hold: an allocation the kernel overcommits
  // would otherwise end in the OOM killer, not in an error.
  const std::uint64_t available = backend.memory_info().available_bytes;
  if (available > 0 && bytes > available / 2) {
    fail(ErrorCode::kResourceExhausted, "kv cache: " + std::to_string(config.num_blocks) +
                                            " blocks need twice " + std::to_string(bytes) +
                                            " bytes, more than the " + std::to_string(available) +
                                            " bytes available on " + backend.name());
  }
  keys_ = backend.allocate(bytes);
  values_ = backend.allocate(bytes);
}

KvLayerView KvCache::layer(std::int64_t local_layer) const {
  if (local_layer < 0 || local_layer >= config_.num_layers) {
    fail(ErrorCode::kOutOfRange, "kv cache: layer " + std::to_string(local_layer) +
                                     " outside the " + std::to_string(config_.num_layers) +
                                     " held");
  }
  const std::uint64_t layer_bytes = kv_block_bytes(config_) / 2 /
                                    static_cast<std::uint64_t>(config_.num_layers) *
                                    static_cast<std::uint64_t>(config_.num_blocks);
  const std::uint64_t offset = static_cast<std::uint64_t>(local_layer) * layer_bytes;
  KvLayerView view;
  view.k = static_cast<std::uint8_t*>(keys_->data()) + offset;
  view.v = static_cast<std::uint8_t*>(values_->data()) + offset;
  view.dtype = config_.dtype;
  view.num_blocks = config_.num_blocks;
  view.block_size = config_.block_size;
  view.kv_dim = config_.kv_dim;
  return view;
}

std::uint64_t KvCache::block_part_bytes() const {
  return kv_block_bytes(config_) / 2 / static_cast<std::uint64_t>(config_.num_layers);
}

std::uint64_t KvCache::block_offset(std::int64_t layer, std::int32_t block) const {
  // [layer][block][block_size][kv_dim]: a block is contiguous within its layer.
  return (static_cast<std::uint64_t>(layer) * static_cast<std::uint64_t>(config_.num_blocks) +
          static_cast<std::uint64_t>(block)) *
         block_part_bytes();
}

void KvCache::check_block(std::int32_t block, std::size_t bytes, const char* what) const {
  if (block < 0 || block >= config_.num_blocks) {
    fail(ErrorCode::kOutOfRange, std::string("kv cache: ") + what + " block " +
                                     std::to_string(block) + " outside the " +
                                     std::to_string(config_.num_blocks) + " blocks");
  }
  const std::uint64_t expected = kv_block_bytes(config_);
  if (bytes != expected) {
    fail(ErrorCode::kInvalidArgument, std::string("kv cache: ") + what + " block " +
                                          std::to_string(block) + " with " + std::to_string(bytes) +
                                          " bytes, expected " + std::to_string(expected));
  }
}

void KvCache::read_block(std::int32_t block, std::span<std::byte> out) const {
  check_block(block, out.size(), "read of");
  const std::size_t part = block_part_bytes();
  const auto* k = static_cast<const std::byte*>(keys_->data());
  const auto* v = static_cast<const std::byte*>(values_->data());
  std::byte* to = out.data();
  for (const std::byte* from : {k, v}) {
    for (std::int64_t l = 0; l < config_.num_layers; ++l, to += part)
      backend_.copy_to_host_async(to, from + block_offset(l, block), part);
  }
  backend_.synchronize();  // once for the block's 2 x layers copies
}

void KvCache::write_block(std::int32_t block, std::span<const std::byte> in) {
  check_block(block, in.size(), "write of");
  const std::size_t part = block_part_bytes();
  const std::byte* from = in.data();
  for (auto* to :
       {static_cast<std::byte*>(keys_->data()), static_cast<std::byte*>(values_->data())}) {
    for (std::int64_t l = 0; l < config_.num_layers; ++l, from += part)
      backend_.copy_from_host(to + block_offset(l, block), from, part);
  }
  // A device backend may still be reading `in` (pinned memory is copied asynchronously):
  // the caller reuses it for the next block.
  backend_.synchronize();
}

}  // namespace conveyor
