// The paged KV cache of one worker: K and V storage in backend memory for the layers
// the worker holds, cut into fixed-size blocks of tokens, plus the allocator that
// hands blocks to sequences (a free list and one block table per sequence).
//
// Storage: K and V are each f32 [num_layers][num_blocks][block_size][kv_dim]; a
// sequence's position p lives in block block_table[p / block_size], row
// p % block_size, in every layer.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <unordered_map>
#include <vector>

#include "kernels/backend.h"

namespace conveyor {

struct KvCacheConfig {
  std::int64_t num_layers = 0;  // layers held by this worker
  std::int64_t num_blocks = 0;
  std::int64_t block_size = 16;  // tokens per block
  std::int64_t kv_dim = 0;       // num_kv_heads * head_dim
};

// Bytes of K plus V that one block occupies across all layers.
std::uint64_t kv_block_bytes(const KvCacheConfig& config);

class KvCache {
 public:
  using SequenceId = std::int64_t;

  // Allocates the storage from the backend. Throws Error(kInvalidArgument) for
  // non-positive sizes, Error(kResourceExhausted) when the backend cannot hold it.
  KvCache(Backend& backend, const KvCacheConfig& config);

  const KvCacheConfig& config() const { return config_; }
  // The storage of layer `local_layer` (0 = the first layer this worker holds).
  KvLayerView layer(std::int64_t local_layer) const;

  std::int64_t free_blocks() const { return static_cast<std::int64_t>(free_.size()); }
  std::int64_t blocks_for(std::int64_t tokens) const;

  // Grows the sequence's block table (creating it on first use) until it can hold
  // `tokens` positions. Returns false, changing nothing, when too few blocks are free.
  bool reserve(SequenceId sequence, std::int64_t tokens);
  // Returns all of the sequence's blocks to the free list; unknown ids are ignored.
  void release(SequenceId sequence);

  bool contains(SequenceId sequence) const { return tables_.count(sequence) != 0; }
  // Empty for an unknown sequence. Valid until the next reserve/release of it.
  std::span<const std::int32_t> block_table(SequenceId sequence) const;
  // Positions the sequence's blocks can hold.
  std::int64_t capacity(SequenceId sequence) const;

 private:
  KvCacheConfig config_;
  std::unique_ptr<BackendBuffer> keys_;
  std::unique_ptr<BackendBuffer> values_;
  std::vector<std::int32_t> free_;  // a stack: recently freed blocks are reused first
  std::unordered_map<SequenceId, std::vector<std::int32_t>> tables_;
};

}  // namespace conveyor
