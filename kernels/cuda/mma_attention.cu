// Paged causal GQA attention on the tensor cores, for bf16 and FP8 K/V at head_dim 64, 128
// and 256 (the other cases run paged_attention.cu's kernels).
//
// One block of four warps per (query row, K/V head). The warps take turns over tiles of
// 16 keys (tile w, w + 4, ...); each warp copies its tiles into its own shared memory with
// cp.async, a few tiles ahead, and keeps an online softmax per query head of the group.
// The four partial softmaxes merge in shared memory at the end.
//
// Both products are mma.m16n8k16 with f32 accumulation. The group's query heads (at most
// 8) are rows 0-7 of the A operand and rows 8-15 hold what bf16 rounding left of them
// (q - bf16(q), rounded again): the scores are the sum of the two halves of the output,
// so the query enters with 16 bits of mantissa and the scores are as exact as f32 dot
// products to about 1e-5, for the price of rows the product would have computed anyway.
// The probabilities are split the same way for the product with V. K and V are read as
// the cache holds them (FP8 codes widened to bf16 exactly; their per-key scales applied
// to the scores and folded into the probabilities).
//
// Operand layouts. A sum over head dimensions (scores) or keys (output) may take its terms
// in any order, as long as both operands agree. So lane (g = lane / 4, r = lane % 4) reads
// 8 consecutive dimensions c * 32 + r * 8 ... of key g of a group of 8 keys with one
// shared-memory load, and those dimensions are its k-slots of two consecutive k-steps;
// the query fragment is loaded with the same order. For V the pairs must run along keys:
// the same 8-dimension load, transposed 8x8 at a time in registers (movmatrix), gives the
// B fragments, and output column 2 r + e of 8x8 tile (c, i) is dimension
// c * 32 + r * 8 + 2 i + e: each lane ends with 8 consecutive dimensions per 32.
#include <cuda_bf16.h>
#include <cuda_fp8.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/ptx.h"
#include "kernels/cuda/shared_memory_grant.h"

namespace conveyor::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kTileKeys = 16;
constexpr int kGroupRows = 8;  // query heads the A operand holds (its other 8 rows: remainders)
constexpr float kLog2e = 1.4426950408889634f;

// Shared memory of one warp: its stages, each the K and V rows of one tile (16-byte
// chunks, swizzled so that the fragment loads hit every bank once) and, for FP8, the
// tile's K and V scales.
template <int kHeadDim, typename T, int kStagesOverride>
struct Layout {
  static constexpr bool kFp8 = sizeof(T) == 1;
  static constexpr int kRowBytes = kHeadDim * static_cast<int>(sizeof(T));
  static constexpr int kChunks = kRowBytes / 16;
  static constexpr int kMatrixBytes = kTileKeys * kRowBytes;
  static constexpr int kScaleBytes = kFp8 ? kTileKeys * 4 : 0;
  static constexpr int kStageBytes = 2 * kMatrixBytes + 2 * kScaleBytes;
  // About 24 KiB of stages a warp (two blocks a multiprocessor), two to four stages.
  static constexpr int kStages = kStagesOverride > 0 ? kStagesOverride
                                                     : std::clamp(24576 / kStageBytes, 2, 4);
  static constexpr int kWarpBytes = kStages * kStageBytes;
  static constexpr int kBlockBytes = kWarps * kWarpBytes;
  // After the loop a warp's stages hold its partial softmax: max and sum per head, then
  // the weighted V sums.
  static constexpr int kMergeBytes = (2 * kGroupRows + kGroupRows * kHeadDim) * 4;
  static_assert(kMergeBytes <= kWarpBytes, "a warp's stages must hold its partial softmax");
  static_assert(kChunks >= 4, "rows of at least 64 bytes");

  // The physical 16-byte chunk of chunk q of row `row`. bf16: rows 2k and 2k + 1 use
  // opposite halves of each 128 bytes (a phase of a 16-byte load reads two rows); FP8:
  // rows 4k ... 4k + 3 use different quarters (a phase of an 8-byte load reads four).
  __device__ static int chunk(int row, int q) {
    if constexpr (kFp8) return q ^ (((row & 3) << 1) & (kChunks - 1));
    return q ^ ((row & 1) << 2);
  }
};

// What every warp of a block needs to find its keys.
struct RowKeys {
  const std::int32_t* table;
  std::int64_t kv_dim;
  std::int64_t head_offset;  // elements: kv_head * head_dim
  std::int32_t block_size;
  std::int32_t first_key;
  std::int32_t last_key;
  std::int32_t scale_index;  // kv_head, into a slot's num_kv_heads scales
  std::int32_t num_kv_heads;
};

__device__ __forceinline__ std::int64_t slot_of(const RowKeys& keys, int j) {
  return static_cast<std::int64_t>(keys.table[j / keys.block_size]) * keys.block_size +
         j % keys.block_size;
}

// Starts the copies of the tile of keys [j0, j0 + 16) into `stage`; keys past the last
// are zero-filled.
template <int kHeadDim, typename T, int kStages>
__device__ __forceinline__ void load_tile(char* stage, const T* k_cache, const T* v_cache,
                                          const float* k_scales, const float* v_scales,
                                          const RowKeys& keys, int j0, int lane) {
  using L = Layout<kHeadDim, T, kStages>;
  // Lane l finds the slot of key j0 + l % 16 once; the copies take it by shuffle.
  const int my_key = j0 + lane % kTileKeys;
  const bool my_valid = my_key <= keys.last_key;
  const std::int64_t my_slot = slot_of(keys, my_valid ? my_key : keys.last_key);
  char* k_tile = stage;
  char* v_tile = stage + L::kMatrixBytes;
  constexpr int kElementsPerChunk = 16 / static_cast<int>(sizeof(T));
#pragma unroll
  for (int idx = lane; idx < kTileKeys * L::kChunks; idx += 32) {
    const int row = idx / L::kChunks;
    const int q = idx % L::kChunks;
    const std::int64_t slot = __shfl_sync(0xffffffffu, my_slot, row);
    const bool valid = j0 + row <= keys.last_key;
    const std::int64_t src = slot * keys.kv_dim + keys.head_offset + q * kElementsPerChunk;
    const int dst = row * L::kRowBytes + L::chunk(row, q) * 16;
    ptx::copy_async_16(k_tile + dst, k_cache + src, valid);
    ptx::copy_async_16(v_tile + dst, v_cache + src, valid);
  }
  if constexpr (L::kFp8) {
    auto* scales = reinterpret_cast<float*>(stage + 2 * L::kMatrixBytes);
    const float* from = lane < kTileKeys ? k_scales : v_scales;
    ptx::copy_async_4(scales + lane, from + my_slot * keys.num_kv_heads + keys.scale_index,
                      my_valid);
  }
}

__device__ __forceinline__ std::uint32_t pack_bf16(float low, float high) {
  const __nv_bfloat162 pair = __floats2bfloat162_rn(low, high);
  return *reinterpret_cast<const std::uint32_t*>(&pair);
}

// A pair as two bf16 pairs: the rounded values and the rounding's remainders, rounded.
__device__ __forceinline__ void split_bf16(float a, float b, std::uint32_t& hi, std::uint32_t& lo) {
  const __nv_bfloat162 h = __floats2bfloat162_rn(a, b);
  hi = *reinterpret_cast<const std::uint32_t*>(&h);
  lo = pack_bf16(a - __low2float(h), b - __high2float(h));
}

// Four E4M3 codes (a word) as two bf16 pairs, exactly.
__device__ __forceinline__ void widen_e4m3(std::uint32_t codes, std::uint32_t& low,
                                           std::uint32_t& high) {
  const auto half_pair = [](std::uint32_t two) {
    const __half2 h(__nv_cvt_fp8x2_to_halfraw2(static_cast<__nv_fp8x2_storage_t>(two), __NV_E4M3));
    const float2 f = __half22float2(h);
    return pack_bf16(f.x, f.y);
  };
  low = half_pair(codes & 0xFFFFu);
  high = half_pair(codes >> 16);
}

// Lane (g, r)'s 8 dimensions c * 32 + r * 8 ... of row `row` of a tile, as 4 bf16 pairs.
template <int kHeadDim, typename T, int kStages>
__device__ __forceinline__ void load_row_words(const char* tile, int row, int c, int r,
                                               std::uint32_t (&w)[4]) {
  using L = Layout<kHeadDim, T, kStages>;
  if constexpr (L::kFp8) {
    const int q = c * 2 + (r >> 1);
    const uint2 codes = *reinterpret_cast<const uint2*>(tile + row * L::kRowBytes +
                                                        L::chunk(row, q) * 16 + (r & 1) * 8);
    widen_e4m3(codes.x, w[0], w[1]);
    widen_e4m3(codes.y, w[2], w[3]);
  } else {
    const uint4 v =
        *reinterpret_cast<const uint4*>(tile + row * L::kRowBytes + L::chunk(row, c * 4 + r) * 16);
    w[0] = v.x;
    w[1] = v.y;
    w[2] = v.z;
    w[3] = v.w;
  }
}

template <int kHeadDim, typename T, int kStages>
__global__ void __launch_bounds__(kWarps * 32, 2)
    mma_attention_kernel(const float* q, const T* k_cache, const T* v_cache, DeviceStep step,
                         DeviceAttention cfg, float* out) {
  using L = Layout<kHeadDim, T, kStages>;
  constexpr int kC = kHeadDim / 32;  // 32-dimension chunks
  const int t = blockIdx.x;
  const int kv_head = blockIdx.y;
  const int s = step.row_sequence[t];
  if (s < 0) return;
  const DeviceSequence seq = step.sequences[s];
  const int position = seq.start_position + (t - seq.first_row);
  const int group = cfg.num_heads / cfg.num_kv_heads;
  const int warp = threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  const int g = lane / 4;
  const int r = lane % 4;

  RowKeys keys;
  keys.table = step.block_tables + seq.table_offset;
  keys.kv_dim = cfg.kv_dim;
  keys.head_offset = static_cast<std::int64_t>(kv_head) * kHeadDim;
  keys.block_size = cfg.block_size;
  keys.first_key = cfg.sliding_window > 0 ? max(0, position - cfg.sliding_window + 1) : 0;
  keys.last_key = position;
  keys.scale_index = kv_head;
  keys.num_kv_heads = cfg.num_kv_heads;

  // The query of head g, times the scale and log2(e) (the softmax runs in base 2), split.
  std::uint32_t q_hi[kC][4];
  std::uint32_t q_lo[kC][4];
  {
    const std::int64_t q_width = static_cast<std::int64_t>(cfg.num_heads) * kHeadDim;
    const float* q_row =
        q + t * q_width + static_cast<std::int64_t>(kv_head * group + g) * kHeadDim;
    const float factor = cfg.scale * kLog2e;
#pragma unroll
    for (int c = 0; c < kC; ++c) {
      float v[8];
      if (g < group) {
        const float4 a = *reinterpret_cast<const float4*>(q_row + c * 32 + r * 8);
        const float4 b = *reinterpret_cast<const float4*>(q_row + c * 32 + r * 8 + 4);
        v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w;
        v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
      } else {
#pragma unroll
        for (int i = 0; i < 8; ++i)
          v[i] = 0.0f;
      }
#pragma unroll
      for (int i = 0; i < 4; ++i)
        split_bf16(v[2 * i] * factor, v[2 * i + 1] * factor, q_hi[c][i], q_lo[c][i]);
    }
  }

  extern __shared__ __align__(16) char shared[];
  char* region = shared + warp * L::kWarpBytes;
  const int num_tiles = (keys.last_key - keys.first_key) / kTileKeys + 1;
  const int my_tiles = num_tiles > warp ? (num_tiles - warp + kWarps - 1) / kWarps : 0;
  const auto tile_start = [&](int i) { return keys.first_key + (warp + i * kWarps) * kTileKeys; };
#pragma unroll
  for (int i = 0; i < L::kStages - 1; ++i) {
    if (i < my_tiles)
      load_tile<kHeadDim, T, kStages>(region + i * L::kStageBytes, k_cache, v_cache, cfg.k_scales,
                                      cfg.v_scales, keys, tile_start(i), lane);
    ptx::commit_copies();
  }

  float o[kC * 4][4];
#pragma unroll
  for (int n = 0; n < kC * 4; ++n)
    o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
  float run_max = -INFINITY;  // of head g, in base-2 units; the same in the 4 lanes of g
  float run_sum = 0.0f;       // this lane's keys only; summed over the 4 at the end

  for (int i = 0; i < my_tiles; ++i) {
    ptx::wait_copies<L::kStages - 2>();
    __syncwarp();
    const char* stage = region + (i % L::kStages) * L::kStageBytes;
    const char* k_tile = stage;
    const char* v_tile = stage + L::kMatrixBytes;
    const int j0 = tile_start(i);

    // Scores of head g (hi + lo rows) for keys 8 nt + 2 r + e of the tile.
    float acc[2][4];
#pragma unroll
    for (int nt = 0; nt < 2; ++nt) {
      acc[nt][0] = acc[nt][1] = acc[nt][2] = acc[nt][3] = 0.0f;
#pragma unroll
      for (int c = 0; c < kC; ++c) {
        std::uint32_t w[4];
        load_row_words<kHeadDim, T, kStages>(k_tile, nt * 8 + g, c, r, w);
        const std::uint32_t a0[4] = {q_hi[c][0], q_lo[c][0], q_hi[c][1], q_lo[c][1]};
        const std::uint32_t a1[4] = {q_hi[c][2], q_lo[c][2], q_hi[c][3], q_lo[c][3]};
        ptx::mma_bf16(acc[nt], a0, w[0], w[1]);
        ptx::mma_bf16(acc[nt], a1, w[2], w[3]);
      }
    }
    float score[2][2];
    float tile_max = -INFINITY;
#pragma unroll
    for (int nt = 0; nt < 2; ++nt) {
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int key = nt * 8 + 2 * r + e;
        float x = acc[nt][e] + acc[nt][e + 2];
        if constexpr (L::kFp8) {
          x *= reinterpret_cast<const float*>(stage + 2 * L::kMatrixBytes)[key];
        }
        score[nt][e] = j0 + key <= keys.last_key ? x : -INFINITY;
        tile_max = fmaxf(tile_max, score[nt][e]);
      }
    }
    tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 1));
    tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 2));
    const float new_max = fmaxf(run_max, tile_max);
    const float correction = exp2f(run_max - new_max);
    run_max = new_max;
    float p[2][2];
    float tile_sum = 0.0f;
#pragma unroll
    for (int nt = 0; nt < 2; ++nt) {
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        p[nt][e] = exp2f(score[nt][e] - new_max);
        tile_sum += p[nt][e];
        if constexpr (L::kFp8) {
          p[nt][e] *= reinterpret_cast<const float*>(stage + 2 * L::kMatrixBytes +
                                                     L::kScaleBytes)[nt * 8 + 2 * r + e];
        }
      }
    }
    run_sum = run_sum * correction + tile_sum;
#pragma unroll
    for (int n = 0; n < kC * 4; ++n) {
#pragma unroll
      for (int e = 0; e < 4; ++e)
        o[n][e] *= correction;
    }

    // Output += P V: rows 0-7 the rounded probabilities, rows 8-15 their remainders.
    std::uint32_t a[4];
    split_bf16(p[0][0], p[0][1], a[0], a[1]);
    split_bf16(p[1][0], p[1][1], a[2], a[3]);
#pragma unroll
    for (int c = 0; c < kC; ++c) {
      std::uint32_t v0[4];
      std::uint32_t v1[4];
      load_row_words<kHeadDim, T, kStages>(v_tile, g, c, r, v0);
      load_row_words<kHeadDim, T, kStages>(v_tile, 8 + g, c, r, v1);
#pragma unroll
      for (int w = 0; w < 4; ++w)
        ptx::mma_bf16(o[c * 4 + w], a, ptx::transpose_8x8(v0[w]), ptx::transpose_8x8(v1[w]));
    }

    __syncwarp();
    const int next = i + L::kStages - 1;
    if (next < my_tiles)
      load_tile<kHeadDim, T, kStages>(region + (next % L::kStages) * L::kStageBytes, k_cache,
                                      v_cache, cfg.k_scales, cfg.v_scales, keys, tile_start(next),
                                      lane);
    ptx::commit_copies();
  }
  ptx::wait_copies<0>();
  run_sum += __shfl_xor_sync(0xffffffffu, run_sum, 1);
  run_sum += __shfl_xor_sync(0xffffffffu, run_sum, 2);
  __syncwarp();

  // This warp's partial softmax into its own region: max, sum, then the weighted sums of
  // V per head. A warp that saw no key writes max -inf, sum 0 and zeros.
  auto* part_max = reinterpret_cast<float*>(region);
  float* part_sum = part_max + kGroupRows;
  float* part_acc = part_sum + kGroupRows;
  if (r == 0) {
    part_max[g] = run_max;
    part_sum[g] = run_sum;
  }
#pragma unroll
  for (int c = 0; c < kC; ++c) {
    float v[8];
#pragma unroll
    for (int w = 0; w < 4; ++w) {
      v[2 * w] = o[c * 4 + w][0] + o[c * 4 + w][2];
      v[2 * w + 1] = o[c * 4 + w][1] + o[c * 4 + w][3];
    }
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
  const std::int64_t q_width = static_cast<std::int64_t>(cfg.num_heads) * kHeadDim;
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
  constexpr auto* kernel = &mma_attention_kernel<kHeadDim, T, kStages>;
  grant_shared_memory<kernel>(L::kBlockBytes);
  const dim3 grid(static_cast<unsigned>(step.num_tokens),
                  static_cast<unsigned>(config.num_kv_heads));
  kernel<<<grid, kWarps * 32, L::kBlockBytes, stream>>>(
      q, static_cast<const T*>(k_cache), static_cast<const T*>(v_cache), step, config, out);
}

template <int kHeadDim, typename T>
void launch_stages(const float* q, const void* k_cache, const void* v_cache, const DeviceStep& step,
                   const DeviceAttention& config, float* out, cudaStream_t stream) {
  if (config.stages == 2) {
    launch<kHeadDim, T, 2>(q, k_cache, v_cache, step, config, out, stream);
  } else {
    launch<kHeadDim, T, 0>(q, k_cache, v_cache, step, config, out, stream);
  }
}

template <typename T>
bool launch_type(const float* q, const void* k_cache, const void* v_cache, const DeviceStep& step,
                 const DeviceAttention& config, float* out, cudaStream_t stream) {
  switch (config.head_dim) {
    case 64:
      launch_stages<64, T>(q, k_cache, v_cache, step, config, out, stream);
      return true;
    case 128:
      launch_stages<128, T>(q, k_cache, v_cache, step, config, out, stream);
      return true;
    case 256:
      launch_stages<256, T>(q, k_cache, v_cache, step, config, out, stream);
      return true;
    default:
      return false;
  }
}

}  // namespace

bool mma_paged_attention(const float* q, const void* k_cache, const void* v_cache,
                         const DeviceStep& step, const DeviceAttention& config, float* out,
                         cudaStream_t stream) {
  if (config.num_heads / config.num_kv_heads > kGroupRows) return false;
  switch (config.kv_type) {
    case KvType::kBf16:
      return launch_type<__nv_bfloat16>(q, k_cache, v_cache, step, config, out, stream);
    case KvType::kFp8:
      return launch_type<std::uint8_t>(q, k_cache, v_cache, step, config, out, stream);
    case KvType::kF32:
      return false;
  }
  return false;
}

}  // namespace conveyor::cuda
