// Paged causal GQA attention on the tensor cores, for bf16 and FP8 K/V at head_dim 64, 128
// and 256 (the other cases run paged_attention.cu's kernels). This file: the rows that
// decode alone (one new token of their sequence), and the entry point, which also
// launches mma_prefill_attention.cu's kernel for runs of a prompt's rows.
//
// One block of four warps per (row, K/V head). The warps take turns over tiles of 16 keys
// (tile w, w + 4, ...); each warp copies its tiles into its own shared memory with
// cp.async, a few tiles ahead, and keeps an online softmax per query head of the group
// (mma_attention_tile.h). The four partial softmaxes merge in shared memory at the end.
#include "kernels/cuda/mma_attention.h"

#include <algorithm>
#include <cstdint>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/mma_attention_tile.h"
#include "kernels/cuda/shared_memory_grant.h"

namespace conveyor::cuda {
namespace {

using namespace mma_attention;

constexpr int kWarps = 4;

// Shared memory of one warp: its stages.
template <int kHeadDim, typename T, int kStagesOverride>
struct Layout {
  using F = TileFormat<kHeadDim, T>;
  // About 24 KiB of stages a warp (two blocks a multiprocessor; one at head_dim 256, whose
  // two stages take 32 KiB), two to four stages.
  static constexpr int kStages = kStagesOverride > 0 ? kStagesOverride
                                                     : std::clamp(24576 / F::kBytes, 2, 4);
  static constexpr int kWarpBytes = kStages * F::kBytes;
  static constexpr int kBlockBytes = kWarps * kWarpBytes;
  // After the loop a warp's stages hold its partial softmax: max and sum per head, then
  // the weighted V sums.
  static constexpr int kMergeBytes = (2 * kGroupRows + kGroupRows * kHeadDim) * 4;
  static_assert(kMergeBytes <= kWarpBytes, "a warp's stages must hold its partial softmax");
};

// Starts one warp's copies of the tile of keys [j0, j0 + 16) into `tile`; keys past the
// last are zero-filled.
template <int kHeadDim, typename T>
__device__ __forceinline__ void load_tile(char* tile, const T* k_cache, const T* v_cache,
                                          const DeviceAttention& cfg, const SequenceKeys& keys,
                                          int j0, int last_key, int lane) {
  using F = TileFormat<kHeadDim, T>;
  // Lane l finds the slot of key j0 + l % 16 once; the copies take it by shuffle.
  const int my_key = j0 + lane % kTileKeys;
  const bool my_valid = my_key <= last_key;
  const std::int64_t my_slot = slot_of(keys, my_valid ? my_key : last_key);
#pragma unroll
  for (int idx = lane; idx < kTileKeys * F::kChunks; idx += 32) {
    const int row = idx / F::kChunks;
    const std::int64_t slot = __shfl_sync(0xffffffffu, my_slot, row);
    copy_chunk<kHeadDim, T>(tile, k_cache, v_cache, keys, row, idx % F::kChunks, slot,
                            j0 + row <= last_key);
  }
  if constexpr (F::kFp8) {
    copy_scale(tile, F::kMatrixBytes, cfg.k_scales, cfg.v_scales, keys, lane / kTileKeys,
               lane % kTileKeys, my_slot, my_valid);
  }
}

template <int kHeadDim, typename T, int kStages>
__global__ void __launch_bounds__(kWarps * 32, 2)
    decode_kernel(const float* q, const T* k_cache, const T* v_cache, DeviceStep step,
                  DeviceAttention cfg, float* out) {
  using L = Layout<kHeadDim, T, kStages>;
  using F = TileFormat<kHeadDim, T>;
  const int t = step.decode_rows[blockIdx.x];
  const int kv_head = blockIdx.y;
  const DeviceSequence seq = step.sequences[step.row_sequence[t]];
  const int position = seq.start_position + (t - seq.first_row);
  const int group = cfg.num_heads / cfg.num_kv_heads;
  const int warp = threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  const int g = lane / 4;
  const int r = lane % 4;

  const SequenceKeys keys = sequence_keys(step, seq, cfg, kv_head, kHeadDim);
  const int first_key = cfg.sliding_window > 0 ? max(0, position - cfg.sliding_window + 1) : 0;
  const int last_key = position;

  const std::int64_t q_width = static_cast<std::int64_t>(cfg.num_heads) * kHeadDim;
  QueryFragments<kHeadDim> query;
  query.load(q + t * q_width + static_cast<std::int64_t>(kv_head * group) * kHeadDim, group, g, r,
             cfg.scale);

  extern __shared__ __align__(16) char shared[];
  char* region = shared + warp * L::kWarpBytes;
  const int num_tiles = (last_key - first_key) / kTileKeys + 1;
  const int my_tiles = num_tiles > warp ? (num_tiles - warp + kWarps - 1) / kWarps : 0;
  const auto tile_start = [&](int i) { return first_key + (warp + i * kWarps) * kTileKeys; };
#pragma unroll
  for (int i = 0; i < L::kStages - 1; ++i) {
    if (i < my_tiles)
      load_tile<kHeadDim, T>(region + i * F::kBytes, k_cache, v_cache, cfg, keys, tile_start(i),
                             last_key, lane);
    ptx::commit_copies();
  }

  RowState<kHeadDim> state;
  for (int i = 0; i < my_tiles; ++i) {
    ptx::wait_copies<L::kStages - 2>();
    __syncwarp();
    attend_tile<kHeadDim, T>(region + (i % L::kStages) * F::kBytes, query, tile_start(i), first_key,
                             last_key, state, g, r);
    __syncwarp();
    const int next = i + L::kStages - 1;
    if (next < my_tiles)
      load_tile<kHeadDim, T>(region + (next % L::kStages) * F::kBytes, k_cache, v_cache, cfg, keys,
                             tile_start(next), last_key, lane);
    ptx::commit_copies();
  }
  ptx::wait_copies<0>();
  const float run_sum = state.total_sum();
  __syncwarp();

  // This warp's partial softmax into its own region: max, sum, then the weighted sums of
  // V per head. A warp that saw no key writes max -inf, sum 0 and zeros.
  auto* part_max = reinterpret_cast<float*>(region);
  float* part_sum = part_max + kGroupRows;
  float* part_acc = part_sum + kGroupRows;
  if (r == 0) {
    part_max[g] = state.run_max;
    part_sum[g] = run_sum;
  }
#pragma unroll
  for (int c = 0; c < F::kChunksC; ++c) {
    float v[8];
    state.output(c, v);
    float* to = part_acc + g * kHeadDim + c * 32 + r * 8;
    *reinterpret_cast<float4*>(to) = make_float4(v[0], v[1], v[2], v[3]);
    *reinterpret_cast<float4*>(to + 4) = make_float4(v[4], v[5], v[6], v[7]);
  }
  __syncthreads();

  // Per head, once: each warp's weight 2^(max_w - max) and the inverse of the total.
  __shared__ float weight[kWarps][kGroupRows];
  __shared__ float inverse_total[kGroupRows];
  if (threadIdx.x < group) {
    const int h = threadIdx.x;
    float m = -INFINITY;
    for (int w = 0; w < kWarps; ++w)
      m = fmaxf(m, reinterpret_cast<const float*>(shared + w * L::kWarpBytes)[h]);
    float total = 0.0f;
    for (int w = 0; w < kWarps; ++w) {
      const auto* part = reinterpret_cast<const float*>(shared + w * L::kWarpBytes);
      const float sum = part[kGroupRows + h];
      const float wt = sum == 0.0f ? 0.0f : exp2f(part[h] - m);
      weight[w][h] = wt;
      total += sum * wt;
    }
    inverse_total[h] = 1.0f / total;
  }
  __syncthreads();
  for (int idx = threadIdx.x; idx < group * kHeadDim; idx += blockDim.x) {
    const int h = idx / kHeadDim;
    const int d = idx % kHeadDim;
    float value = 0.0f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) {
      const auto* part = reinterpret_cast<const float*>(shared + w * L::kWarpBytes);
      value += part[2 * kGroupRows + h * kHeadDim + d] * weight[w][h];
    }
    out[t * q_width + static_cast<std::int64_t>(kv_head * group + h) * kHeadDim + d] =
        value * inverse_total[h];
  }
}

template <int kHeadDim, typename T, int kStages>
void launch(const float* q, const void* k_cache, const void* v_cache, const DeviceStep& step,
            const DeviceAttention& config, float* out, cudaStream_t stream) {
  using L = Layout<kHeadDim, T, kStages>;
  constexpr auto* kernel = &decode_kernel<kHeadDim, T, kStages>;
  grant_shared_memory<kernel>(L::kBlockBytes);
  const dim3 grid(static_cast<unsigned>(step.num_decode_rows),
                  static_cast<unsigned>(config.num_kv_heads));
  kernel<<<grid, kWarps * 32, L::kBlockBytes, stream>>>(
      q, static_cast<const T*>(k_cache), static_cast<const T*>(v_cache), step, config, out);
}

// The decode kernel's launch for dispatch_mma_attention.
struct DecodeLaunch : MmaAttentionArgs {
  template <int kHeadDim, typename T>
  void run() const {
    if (config.stages == 2) {
      launch<kHeadDim, T, 2>(q, k_cache, v_cache, step, config, out, stream);
    } else {
      launch<kHeadDim, T, 0>(q, k_cache, v_cache, step, config, out, stream);
    }
  }
};

}  // namespace

bool mma_attention_fits(const DeviceAttention& config) {
  const bool head_dim = config.head_dim == 64 || config.head_dim == 128 || config.head_dim == 256;
  return head_dim && config.kv_type != KvType::kF32 &&
         config.num_heads / config.num_kv_heads <= mma_attention::kGroupRows;
}

void mma_decode_attention(const float* q, const void* k_cache, const void* v_cache,
                          const DeviceStep& step, const DeviceAttention& config, float* out,
                          cudaStream_t stream) {
  if (step.num_decode_rows == 0) return;
  dispatch_mma_attention(config, DecodeLaunch{{q, k_cache, v_cache, step, config, out, stream}});
}

bool mma_paged_attention(const float* q, const void* k_cache, const void* v_cache,
                         const DeviceStep& step, const DeviceAttention& config, float* out,
                         cudaStream_t stream) {
  if (!mma_attention_fits(config)) return false;
  mma_decode_attention(q, k_cache, v_cache, step, config, out, stream);
  mma_prefill_attention(q, k_cache, v_cache, step, config, out, stream);
  return true;
}

}  // namespace conveyor::cuda
