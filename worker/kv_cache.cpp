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

namespace {

// Bytes of one block's K (or V) in one layer: its values, and its scales.
std::uint64_t values_part_bytes(const KvCacheConfig& config) {
  return checked_mul(
      checked_mul(*dtype_bytes(config.dtype, 1), static_cast<std::uint64_t>(config.block_size)),
      static_cast<std::uint64_t>(config.kv_dim));
}

std::uint64_t scales_part_bytes(const KvCacheConfig& config) {
  if (config.dtype != DType::kF8_R) return 0;
  if (config.num_kv_heads <= 0) {
    fail(ErrorCode::kInvalidArgument, "kv cache: an FP8 cache needs the K/V head count");
  }
  return checked_mul(checked_mul(sizeof(float), static_cast<std::uint64_t>(config.block_size)),
                     static_cast<std::uint64_t>(config.num_kv_heads));
}

}  // namespace

std::uint64_t kv_block_bytes(const KvCacheConfig& config) {
  return checked_mul(2 * static_cast<std::uint64_t>(config.num_layers),
                     values_part_bytes(config) + scales_part_bytes(config));
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
  if (config.dtype == DType::kF8_R &&
      (config.num_kv_heads <= 0 || config.kv_dim % config.num_kv_heads != 0)) {
    fail(ErrorCode::kInvalidArgument,
         "kv cache: an FP8 cache needs the K/V head count, dividing the width");
  }
  const std::vector<DType> kept = backend.capabilities().kv_dtypes;
  if (std::find(kept.begin(), kept.end(), config.dtype) == kept.end()) {
    fail(ErrorCode::kUnsupported, "kv cache: " + backend.name() + " does not keep K/V as " +
                                      std::string(dtype_name(config.dtype)));
  }
  const std::uint64_t layers = static_cast<std::uint64_t>(config.num_layers);
  const std::uint64_t blocks = static_cast<std::uint64_t>(config.num_blocks);
  const std::uint64_t value_bytes =
      checked_mul(checked_mul(values_part_bytes(config), layers), blocks);
  const std::uint64_t scale_bytes =
      checked_mul(checked_mul(scales_part_bytes(config), layers), blocks);
  const std::uint64_t bytes = checked_mul(kv_block_bytes(config) / 2, blocks);
  // Refuse up front what the backend cannot hold: an allocation the kernel overcommits
  // would otherwise end in the OOM killer, not in an error.
  const std::uint64_t available = backend.memory_info().available_bytes;
  if (available > 0 && bytes > available / 2) {
    fail(ErrorCode::kResourceExhausted, "kv cache: " + std::to_string(config.num_blocks) +
                                            " blocks need twice " + std::to_string(bytes) +
                                            " bytes, more than the " + std::to_string(available) +
                                            " bytes available on " + backend.name());
  }
  keys_ = backend.allocate(value_bytes);
  values_ = backend.allocate(value_bytes);
  if (scale_bytes > 0) {
    key_scales_ = backend.allocate(scale_bytes);
    value_scales_ = backend.allocate(scale_bytes);
  }
}

KvLayerView KvCache::layer(std::int64_t local_layer) const {
  if (local_layer < 0 || local_layer >= config_.num_layers) {
    fail(ErrorCode::kOutOfRange, "kv cache: layer " + std::to_string(local_layer) +
                                     " outside the " + std::to_string(config_.num_layers) +
                                     " held");
  }
  const std::uint64_t offset = block_offset(local_layer, 0);
  KvLayerView view;
  view.k = static_cast<std::uint8_t*>(keys_->data()) + offset;
  view.v = static_cast<std::uint8_t*>(values_->data()) + offset;
  if (key_scales_) {
    const std::uint64_t scales = scale_offset(local_layer, 0);
    view.k_scales = static_cast<std::uint8_t*>(key_scales_->data()) + scales;
    view.v_scales = static_cast<std::uint8_t*>(value_scales_->data()) + scales;
    view.num_kv_heads = config_.num_kv_heads;
  }
  view.dtype = config_.dtype;
  view.num_blocks = config_.num_blocks;
  view.block_size = config_.block_size;
  view.kv_dim = config_.kv_dim;
  return view;
}

std::uint64_t KvCache::block_part_bytes() const {
  return values_part_bytes(config_);
}

std::uint64_t KvCache::block_offset(std::int64_t layer, std::int32_t block) const {
  // [layer][block][block_size][kv_dim]: a block is contiguous within its layer.
  return (static_cast<std::uint64_t>(layer) * static_cast<std::uint64_t>(config_.num_blocks) +
          static_cast<std::uint64_t>(block)) *
         block_part_bytes();
}

std::uint64_t KvCache::scale_part_bytes() const {
  return scales_part_bytes(config_);
}

std::uint64_t KvCache::scale_offset(std::int64_t layer, std::int32_t block) const {
  return (static_cast<std::uint64_t>(layer) * static_cast<std::uint64_t>(config_.num_blocks) +
          static_cast<std::uint64_t>(block)) *
         scale_part_bytes();
}

std::vector<KvCache::BlockPart> KvCache::block_parts(std::int32_t block) const {
  std::vector<BlockPart> parts;
  for (BackendBuffer* storage : {keys_.get(), values_.get()}) {
    for (std::int64_t l = 0; l < config_.num_layers; ++l) {
      parts.push_back(
          {static_cast<std::byte*>(storage->data()), block_offset(l, block), block_part_bytes()});
    }
  }
  for (BackendBuffer* storage : {key_scales_.get(), value_scales_.get()}) {
    if (storage == nullptr) continue;
    for (std::int64_t l = 0; l < config_.num_layers; ++l) {
      parts.push_back(
          {static_cast<std::byte*>(storage->data()), scale_offset(l, block), scale_part_bytes()});
    }
  }
  return parts;
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
  std::byte* to = out.data();
  for (const BlockPart& part : block_parts(block)) {
    backend_.copy_to_host_async(to, part.storage + part.offset, part.bytes);
    to += part.bytes;
  }
  backend_.synchronize();  // once for all the block's copies
}

void KvCache::write_block(std::int32_t block, std::span<const std::byte> in) {
  check_block(block, in.size(), "write of");
  const std::byte* from = in.data();
  for (const BlockPart& part : block_parts(block)) {
    backend_.copy_from_host(part.storage + part.offset, from, part.bytes);
    from += part.bytes;
  }
  // A device backend may still be reading `in` (pinned memory is copied asynchronously):
  // the caller reuses it for the next block.
  backend_.synchronize();
}

}  // namespace conveyor
