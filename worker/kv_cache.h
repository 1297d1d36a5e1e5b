// The paged KV cache of one worker: K and V storage in backend memory for the layers
// the worker holds, cut into fixed-size blocks of tokens. Which blocks a sequence uses
// is decided by the coordinator's block ledger (coordinator/scheduler/block_allocator.h)
// and arrives with each step as the sequence's block table.
//
// Storage: K and V are each [num_layers][num_blocks][block_size][kv_dim] of the
// config's dtype (f32, bf16, or FP8 E4M3 codes); a sequence's position p lives in block
// block_table[p / block_size], row p % block_size, in every layer. An FP8 cache (kF8_R)
// also keeps K and V scales, [num_layers][num_blocks][block_size][num_kv_heads] f32.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "kernels/backend.h"

namespace conveyor {

struct KvCacheConfig {
  std::int64_t num_layers = 0;  // layers held by this worker
  std::int64_t num_blocks = 0;
  std::int64_t block_size = 16;  // tokens per block
  std::int64_t kv_dim = 0;       // num_kv_heads * head_dim
  // Element type: f32, or bf16 or kF8_R (FP8 with scales per head) where the backend
  // keeps it.
  DType dtype = DType::kF32;
  std::int64_t num_kv_heads = 0;  // needed by kF8_R only (its scales)
};

// Bytes of K plus V (and their scales) that one block occupies across all layers.
std::uint64_t kv_block_bytes(const KvCacheConfig& config);

class KvCache {
 public:
  // Allocates the storage from the backend. Throws Error(kInvalidArgument) for
  // non-positive sizes, Error(kResourceExhausted) when the backend cannot hold it.
  KvCache(Backend& backend, const KvCacheConfig& config);

  const KvCacheConfig& config() const { return config_; }
  // Where the storage lives: what the swap tiers pin their host memory for.
  Backend& backend() const { return backend_; }
  // The storage of layer `local_layer` (0 = the first layer this worker holds).
  KvLayerView layer(std::int64_t local_layer) const;

  // One block's K and V in every layer held, moved between the backend and host memory
  // (swapping a preempted sequence to a K/V tier and back). Packed as K of layers
  // 0..L-1, then V of layers 0..L-1 (then, for FP8, K's scales and V's scales of layers
  // 0..L-1): kv_block_bytes(config()) in all. Throws
  // Error(kOutOfRange) for a block outside the cache, Error(kInvalidArgument) for a
  // span of another size. Both return once `out`/`in` may be used or reused.
  void read_block(std::int32_t block, std::span<std::byte> out) const;
  void write_block(std::int32_t block, std::span<const std::byte> in);

 private:
  // The bytes of one block in one layer of K (or of V), and where block `block` of
  // layer `layer` starts in the K (or V) storage; checks both the block and `bytes`.
  std::uint64_t block_part_bytes() const;
  std::uint64_t block_offset(std::int64_t layer, std::int32_t block) const;
  // The same for the scales of an FP8 cache (0 bytes otherwise).
  std::uint64_t scale_part_bytes() const;
  std::uint64_t scale_offset(std::int64_t layer, std::int32_t block) const;
  // Every part of a block in read_block's order: (storage, offset, bytes).
  struct BlockPart {
    std::byte* storage;
    std::uint64_t offset;
    std::uint64_t bytes;
  };
  std::vector<BlockPart> block_parts(std::int32_t block) const;
  void check_block(std::int32_t block, std::size_t bytes, const char* what) const;

  Backend& backend_;
  KvCacheConfig config_;
  std::unique_ptr<BackendBuffer> keys_;
  std::unique_ptr<BackendBuffer> values_;
  std::unique_ptr<BackendBuffer> key_scales_;  // FP8 only
  std::unique_ptr<BackendBuffer> value_scales_;
};

}  // namespace conveyor
