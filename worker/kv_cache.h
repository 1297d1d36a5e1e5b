// The paged KV cache of one worker: K and V storage in backend memory for the layers
// the worker holds, cut into fixed-size blocks of tokens. Which blocks a sequence uses
// is decided by the coordinator's block ledger (coordinator/scheduler/block_allocator.h)
// and arrives with each step as the sequence's block table.
//
// Storage: K and V are each [num_layers][num_blocks][block_size][kv_dim] of the
// config's dtype (f32 or bf16); a sequence's position p lives in block
// block_table[p / block_size], row p % block_size, in every layer.
#pragma once

#include <cstdint>
#include <memory>

#include "kernels/backend.h"

namespace conveyor {

struct KvCacheConfig {
  std::int64_t num_layers = 0;  // layers held by this worker
  std::int64_t num_blocks = 0;
  std::int64_t block_size = 16;  // tokens per block
  std::int64_t kv_dim = 0;       // num_kv_heads * head_dim
  DType dtype = DType::kF32;     // element type: f32, or bf16 where the backend keeps it
};

// Bytes of K plus V that one block occupies across all layers.
std::uint64_t kv_block_bytes(const KvCacheConfig& config);

class KvCache {
 public:
  // Allocates the storage from the backend. Throws Error(kInvalidArgument) for
  // non-positive sizes, Error(kResourceExhausted) when the backend cannot hold it.
  KvCache(Backend& backend, const KvCacheConfig& config);

  const KvCacheConfig& config() const { return config_; }
  // The storage of layer `local_layer` (0 = the first layer this worker holds).
  KvLayerView layer(std::int64_t local_layer) const;

 private:
  KvCacheConfig config_;
  std::unique_ptr<BackendBuffer> keys_;
  std::unique_ptr<BackendBuffer> values_;
};

}  // namespace conveyor
