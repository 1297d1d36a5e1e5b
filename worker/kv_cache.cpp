#include "worker/kv_cache.h"

#include <limits>
#include <string>

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
  std::uint64_t bytes = 2 * sizeof(float);
  for (std::int64_t n : {config.num_layers, config.block_size, config.kv_dim}) {
    bytes = checked_mul(bytes, static_cast<std::uint64_t>(n));
  }
  return bytes;
}

KvCache::KvCache(Backend& backend, const KvCacheConfig& config) : config_(config) {
  if (config.num_layers <= 0 || config.num_blocks <= 0 || config.block_size <= 0 ||
      config.kv_dim <= 0) {
    fail(ErrorCode::kInvalidArgument,
         "kv cache: layers, blocks, block size and width must be positive");
  }
  if (config.num_blocks > std::numeric_limits<std::int32_t>::max()) {
    fail(ErrorCode::kInvalidArgument, "kv cache: too many blocks for 32-bit block ids");
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
  free_.reserve(static_cast<std::size_t>(config.num_blocks));
  // Pushed in reverse so that block 0 is handed out first.
  for (std::int64_t b = config.num_blocks - 1; b >= 0; --b)
    free_.push_back(static_cast<std::int32_t>(b));
}

KvLayerView KvCache::layer(std::int64_t local_layer) const {
  if (local_layer < 0 || local_layer >= config_.num_layers) {
    fail(ErrorCode::kOutOfRange, "kv cache: layer " + std::to_string(local_layer) +
                                     " outside the " + std::to_string(config_.num_layers) +
                                     " held");
  }
  const std::int64_t layer_floats = config_.num_blocks * config_.block_size * config_.kv_dim;
  KvLayerView view;
  view.k = keys_->floats() + local_layer * layer_floats;
  view.v = values_->floats() + local_layer * layer_floats;
  view.num_blocks = config_.num_blocks;
  view.block_size = config_.block_size;
  view.kv_dim = config_.kv_dim;
  return view;
}

std::int64_t KvCache::blocks_for(std::int64_t tokens) const {
  return (tokens + config_.block_size - 1) / config_.block_size;
}

bool KvCache::reserve(SequenceId sequence, std::int64_t tokens) {
  auto& table = tables_[sequence];
  const std::int64_t missing = blocks_for(tokens) - static_cast<std::int64_t>(table.size());
  if (missing > free_blocks()) {
    if (table.empty()) tables_.erase(sequence);
    return false;
  }
  for (std::int64_t i = 0; i < missing; ++i) {
    table.push_back(free_.back());
    free_.pop_back();
  }
  return true;
}

void KvCache::release(SequenceId sequence) {
  auto it = tables_.find(sequence);
  if (it == tables_.end()) return;
  for (auto block = it->second.rbegin(); block != it->second.rend(); ++block) {
    free_.push_back(*block);
  }
  tables_.erase(it);
}

std::span<const std::int32_t> KvCache::block_table(SequenceId sequence) const {
  auto it = tables_.find(sequence);
  if (it == tables_.end()) return {};
  return it->second;
}

std::int64_t KvCache::capacity(SequenceId sequence) const {
  return static_cast<std::int64_t>(block_table(sequence).size()) * config_.block_size;
}

}  // namespace conveyor
