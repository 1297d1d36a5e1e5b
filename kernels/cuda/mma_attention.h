// The tensor-core attention's kernels (mma_attention.cu, mma_prefill_attention.cu), behind
// cuda_ops.h's mma_paged_attention.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/cuda_ops.h"

namespace conveyor::cuda {

// Whether the tensor-core kernels take this shape and K/V type: bf16 or FP8 K/V, head_dim
// 64, 128 or 256, at most 8 query heads per K/V head.
bool mma_attention_fits(const DeviceAttention& config);

// The rows of step.decode_rows: a block of four warps per (row, K/V head), the warps
// splitting the row's keys.
void mma_decode_attention(const float* q, const void* k_cache, const void* v_cache,
                          const DeviceStep& step, const DeviceAttention& config, float* out,
                          cudaStream_t stream);

// The runs of step.prefill_groups: a block of kPrefillGroupRows warps per (run, K/V head),
// a warp per row, sharing each tile of keys the block copies.
void mma_prefill_attention(const float* q, const void* k_cache, const void* v_cache,
                           const DeviceStep& step, const DeviceAttention& config, float* out,
                           cudaStream_t stream);

// What every tensor-core attention launch takes; each kernel's launch derives from it.
struct MmaAttentionArgs {
  const float* q;
  const void* k_cache;
  const void* v_cache;
  const DeviceStep& step;
  const DeviceAttention& config;
  float* out;
  cudaStream_t stream;
};

// Calls launch.template run<kHeadDim, T>() for the config's head size (64, 128 or 256) and
// K/V element type (__nv_bfloat16, or std::uint8_t for FP8 codes): where both kernels
// choose their instantiation. The config must fit (mma_attention_fits).
template <typename Launch>
void dispatch_mma_attention(const DeviceAttention& config, const Launch& launch) {
  const auto by_head_dim = [&](auto type_tag) {
    using T = decltype(type_tag);
    switch (config.head_dim) {
      case 64:
        launch.template run<64, T>();
        break;
      case 128:
        launch.template run<128, T>();
        break;
      default:
        launch.template run<256, T>();
        break;
    }
  };
  if (config.kv_type == KvType::kFp8) {
    by_head_dim(std::uint8_t{});
  } else {
    by_head_dim(__nv_bfloat16{});
  }
}

}  // namespace conveyor::cuda
