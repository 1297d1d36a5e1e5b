// Tensor-core attention for runs of a prompt's rows (step.prefill_groups): a block of
// kPrefillGroupRows warps per (run, K/V head), one warp per row. The block copies each
// tile of 16 keys into shared memory once, a few tiles ahead, and every warp whose row
// sees a key of it attends to it (mma_attention_tile.h): the rows of a run share their
// K/V reads, where one block per row would read them once per row. A warp's row is whole
// in the warp, so its output needs no merge.
#include <algorithm>
#include <cstdint>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/mma_attention.h"
#include "kernels/cuda/mma_attention_tile.h"

namespace conveyor::cuda {
namespace {

using namespace mma_attention;

constexpr int kWarps = kPrefillGroupRows;
constexpr int kThreads = kWarps * 32;

template <int kHeadDim, typename T>
struct Layout {
  using F = TileFormat<kHeadDim, T>;
  static constexpr int kStages = std::clamp(32768 / F::kBytes, 2, 4);
  static constexpr int kBlockBytes = kStages * F::kBytes;
  static_assert(kBlockBytes <= 48 * 1024, "within the shared memory a launch gets unasked");
};

// Starts the block's copies of the tile of keys [j0, j0 + 16) into `tile`; keys past
// `last_key` are zero-filled.
template <int kHeadDim, typename T>
__device__ __forceinline__ void load_tile(char* tile, const T* k_cache, const T* v_cache,
                                          const DeviceAttention& cfg, const SequenceKeys& keys,
                                          int j0, int last_key) {
  using F = TileFormat<kHeadDim, T>;
  for (int idx = threadIdx.x; idx < kTileKeys * F::kChunks; idx += kThreads) {
    const int row = idx / F::kChunks;
    const bool valid = j0 + row <= last_key;
    copy_chunk<kHeadDim, T>(tile, k_cache, v_cache, keys, row, idx % F::kChunks,
                            slot_of(keys, valid ? j0 + row : last_key), valid);
  }
  if constexpr (F::kFp8) {
    if (threadIdx.x < 2 * kTileKeys) {
      const int row = threadIdx.x % kTileKeys;
      const bool valid = j0 + row <= last_key;
      copy_scale(tile, F::kMatrixBytes, cfg.k_scales, cfg.v_scales, keys, threadIdx.x / kTileKeys,
                 row, slot_of(keys, valid ? j0 + row : last_key), valid);
    }
  }
}

template <int kHeadDim, typename T>
__global__ void __launch_bounds__(kThreads, 1)
    prefill_kernel(const float* q, const T* k_cache, const T* v_cache, DeviceStep step,
                   DeviceAttention cfg, float* out) {
  using L = Layout<kHeadDim, T>;
  using F = TileFormat<kHeadDim, T>;
  const int first_row = step.prefill_groups[blockIdx.x];
  const int kv_head = blockIdx.y;
  const DeviceSequence seq = step.sequences[step.row_sequence[first_row]];
  const int rows = min(kWarps, seq.first_row + seq.num_new - first_row);
  const int first_position = seq.start_position + (first_row - seq.first_row);
  const int group = cfg.num_heads / cfg.num_kv_heads;
  const int warp = threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  const int g = lane / 4;
  const int r = lane % 4;
  // This warp's row (if the run has it) and the keys it sees; the block's keys are the
  // union over its rows.
  const bool active = warp < rows;
  const int t = first_row + warp;
  const int position = first_position + warp;
  const auto window_start = [&](int p) {
    return cfg.sliding_window > 0 ? max(0, p - cfg.sliding_window + 1) : 0;
  };
  const int my_first = window_start(position);
  const int block_first = window_start(first_position);
  const int block_last = first_position + rows - 1;

  const SequenceKeys keys = sequence_keys(step, seq, cfg, kv_head, kHeadDim);

  const std::int64_t q_width = static_cast<std::int64_t>(cfg.num_heads) * kHeadDim;
  const std::int64_t head_offset = static_cast<std::int64_t>(kv_head * group) * kHeadDim;
  QueryFragments<kHeadDim> query;
  if (active) query.load(q + t * q_width + head_offset, group, g, r, cfg.scale);

  extern __shared__ __align__(16) char shared[];
  const int num_tiles = (block_last - block_first) / kTileKeys + 1;
  const auto tile_start = [&](int i) { return block_first + i * kTileKeys; };
#pragma unroll
  for (int i = 0; i < L::kStages - 1; ++i) {
    if (i < num_tiles)
      load_tile<kHeadDim, T>(shared + i * F::kBytes, k_cache, v_cache, cfg, keys, tile_start(i),
                             block_last);
    ptx::commit_copies();
  }

  RowState<kHeadDim> state;
  for (int i = 0; i < num_tiles; ++i) {
    ptx::wait_copies<L::kStages - 2>();
    // Tile i has landed for every thread, and every warp is done with tile i - 1, whose
    // stage the copies below reuse.
    __syncthreads();
    const int j0 = tile_start(i);
    if (active && j0 <= position && j0 + kTileKeys - 1 >= my_first) {
      attend_tile<kHeadDim, T>(shared + (i % L::kStages) * F::kBytes, query, j0, my_first, position,
                               state, g, r);
    }
    const int next = i + L::kStages - 1;
    if (next < num_tiles)
      load_tile<kHeadDim, T>(shared + (next % L::kStages) * F::kBytes, k_cache, v_cache, cfg, keys,
                             tile_start(next), block_last);
    ptx::commit_copies();
  }
  ptx::wait_copies<0>();
  if (!active) return;
  const float inverse_total = 1.0f / state.total_sum();
  if (g >= group) return;
  float* to_row = out + t * q_width + head_offset + static_cast<std::int64_t>(g) * kHeadDim;
#pragma unroll
  for (int c = 0; c < F::kChunksC; ++c) {
    float v[8];
    state.output(c, v);
    float* to = to_row + c * 32 + r * 8;
    *reinterpret_cast<float4*>(to) = make_float4(v[0] * inverse_total, v[1] * inverse_total,
                                                 v[2] * inverse_total, v[3] * inverse_total);
    *reinterpret_cast<float4*>(to + 4) = make_float4(v[4] * inverse_total, v[5] * inverse_total,
                                                     v[6] * inverse_total, v[7] * inverse_total);
  }
}

template <int kHeadDim, typename T>
void launch(const float* q, const void* k_cache, const void* v_cache, const DeviceStep& step,
            const DeviceAttention& config, float* out, cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>(step.num_prefill_groups),
                  static_cast<unsigned>(config.num_kv_heads));
  prefill_kernel<kHeadDim, T><<<grid, kThreads, Layout<kHeadDim, T>::kBlockBytes, stream>>>(
      q, static_cast<const T*>(k_cache), static_cast<const T*>(v_cache), step, config, out);
}

// The prefill kernel's launch for dispatch_mma_attention.
struct PrefillLaunch : MmaAttentionArgs {
  template <int kHeadDim, typename T>
  void run() const {
    launch<kHeadDim, T>(q, k_cache, v_cache, step, config, out, stream);
  }
};

}  // namespace

void mma_prefill_attention(const float* q, const void* k_cache, const void* v_cache,
                           const DeviceStep& step, const DeviceAttention& config, float* out,
                           cudaStream_t stream) {
  if (step.num_prefill_groups == 0) return;
  dispatch_mma_attention(config, PrefillLaunch{{q, k_cache, v_cache, step, config, out, stream}});
}

}  // namespace conveyor::cuda
