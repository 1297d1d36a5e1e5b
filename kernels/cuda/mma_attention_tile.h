// One warp's work on a tile of 16 keys for the tensor-core attention kernels
// (mma_attention.cu for rows decoding alone, mma_prefill_attention.cu for runs of a
// prompt's rows): the tile's format in shared memory, the query fragments, and the
// scores, online softmax and weighted V sum of one query row's group of heads.
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
// Device code only (include from .cu).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp8.h>

#include <cstdint>

#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/ptx.h"

namespace conveyor::cuda::mma_attention {

constexpr int kTileKeys = 16;
constexpr int kGroupRows = 8;  // query heads the A operand holds (its other 8 rows: remainders)
constexpr float kLog2e = 1.4426950408889634f;

// A tile in shared memory: the K rows, the V rows (16-byte chunks, swizzled so that the
// fragment loads hit every bank once) and, for FP8, the K and V scales of its 16 keys.
template <int kHeadDim, typename T>
struct TileFormat {
  static constexpr bool kFp8 = sizeof(T) == 1;
  static constexpr int kRowBytes = kHeadDim * static_cast<int>(sizeof(T));
  static constexpr int kChunks = kRowBytes / 16;
  static constexpr int kElementsPerChunk = 16 / static_cast<int>(sizeof(T));
  static constexpr int kMatrixBytes = kTileKeys * kRowBytes;
  static constexpr int kScaleBytes = kFp8 ? kTileKeys * 4 : 0;
  static constexpr int kBytes = 2 * kMatrixBytes + 2 * kScaleBytes;
  static constexpr int kChunksC = kHeadDim / 32;  // 32-dimension chunks of a row
  static_assert(kChunks >= 4, "rows of at least 64 bytes");

  // The physical 16-byte chunk of chunk q of row `row`. bf16: rows 2k and 2k + 1 use
  // opposite halves of each 128 bytes (a phase of a 16-byte load reads two rows); FP8:
  // rows 4k ... 4k + 3 use different quarters (a phase of an 8-byte load reads four), but
  // at head_dim 64, whose 64-byte rows have two: rows 4k and 4k + 2 then share banks.
  __device__ static int chunk(int row, int q) {
    if constexpr (kFp8) return q ^ (((row & 3) << 1) & (kChunks - 1));
    return q ^ ((row & 1) << 2);
  }
  __device__ static int offset(int row, int q) { return row * kRowBytes + chunk(row, q) * 16; }
  __device__ static const float* k_scales(const char* tile) {
    return reinterpret_cast<const float*>(tile + 2 * kMatrixBytes);
  }
  __device__ static const float* v_scales(const char* tile) { return k_scales(tile) + kTileKeys; }
};

// Where one sequence's keys are, for one K/V head.
struct SequenceKeys {
  const std::int32_t* table;
  std::int64_t kv_dim;
  std::int64_t head_offset;  // elements: kv_head * head_dim
  std::int32_t block_size;
  std::int32_t kv_head;
  std::int32_t num_kv_heads;
};

// Where `seq`'s keys are for K/V head `kv_head`.
__device__ __forceinline__ SequenceKeys sequence_keys(const DeviceStep& step,
                                                      const DeviceSequence& seq,
                                                      const DeviceAttention& cfg, int kv_head,
                                                      int head_dim) {
  SequenceKeys keys;
  keys.table = step.block_tables + seq.table_offset;
  keys.kv_dim = cfg.kv_dim;
  keys.head_offset = static_cast<std::int64_t>(kv_head) * head_dim;
  keys.block_size = cfg.block_size;
  keys.kv_head = kv_head;
  keys.num_kv_heads = cfg.num_kv_heads;
  return keys;
}

__device__ __forceinline__ std::int64_t slot_of(const SequenceKeys& keys, int j) {
  return static_cast<std::int64_t>(keys.table[j / keys.block_size]) * keys.block_size +
         j % keys.block_size;
}

// Starts the copies of 16-byte chunk q of key `row` of a tile into `tile`, K and V, from
// the key's slot; with `valid` false both are zero-filled and nothing is read.
template <int kHeadDim, typename T>
__device__ __forceinline__ void copy_chunk(char* tile, const T* k_cache, const T* v_cache,
                                           const SequenceKeys& keys, int row, int q,
                                           std::int64_t slot, bool valid) {
  using F = TileFormat<kHeadDim, T>;
  const std::int64_t src = slot * keys.kv_dim + keys.head_offset + q * F::kElementsPerChunk;
  const int dst = F::offset(row, q);
  ptx::copy_async_16(tile + dst, k_cache + src, valid);
  ptx::copy_async_16(tile + F::kMatrixBytes + dst, v_cache + src, valid);
}

// FP8 only: key `row`'s K scale (which = 0) or V scale (which = 1) into the tile; with
// `valid` false a zero.
__device__ __forceinline__ void copy_scale(char* tile, int matrix_bytes, const float* k_scales,
                                           const float* v_scales, const SequenceKeys& keys,
                                           int which, int row, std::int64_t slot, bool valid) {
  auto* scales = reinterpret_cast<float*>(tile + 2 * matrix_bytes);
  const float* from = which == 0 ? k_scales : v_scales;
  ptx::copy_async_4(scales + which * kTileKeys + row,
                    from + slot * keys.num_kv_heads + keys.kv_head, valid);
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

// Lane (g, r)'s 8 dimensions c * 32 + r * 8 ... of row `row` of a K or V matrix, as 4
// bf16 pairs.
template <int kHeadDim, typename T>
__device__ __forceinline__ void load_row_words(const char* matrix, int row, int c, int r,
                                               std::uint32_t (&w)[4]) {
  using F = TileFormat<kHeadDim, T>;
  if constexpr (F::kFp8) {
    const uint2 codes =
        *reinterpret_cast<const uint2*>(matrix + F::offset(row, c * 2 + (r >> 1)) + (r & 1) * 8);
    widen_e4m3(codes.x, w[0], w[1]);
    widen_e4m3(codes.y, w[2], w[3]);
  } else {
    const uint4 v = *reinterpret_cast<const uint4*>(matrix + F::offset(row, c * 4 + r));
    w[0] = v.x;
    w[1] = v.y;
    w[2] = v.z;
    w[3] = v.w;
  }
}

// One query row's heads as A fragments: head g (zero past `group`) of q_row, times the
// scale and log2(e) (the softmax runs in base 2), split into rounded and remainder.
template <int kHeadDim>
struct QueryFragments {
  std::uint32_t hi[kHeadDim / 32][4];
  std::uint32_t lo[kHeadDim / 32][4];

  __device__ void load(const float* q_heads, int group, int g, int r, float scale) {
    const float* q_row = q_heads + static_cast<std::int64_t>(g) * kHeadDim;
    const float factor = scale * kLog2e;
#pragma unroll
    for (int c = 0; c < kHeadDim / 32; ++c) {
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
        split_bf16(v[2 * i] * factor, v[2 * i + 1] * factor, hi[c][i], lo[c][i]);
    }
  }
};

// A query row's online softmax for head g: the running max (base-2 units, the same in
// the 4 lanes of g), this lane's part of the running sum, and the weighted V sums (hi
// rows in elements 0-1, remainder rows in 2-3 of each 8-column tile).
template <int kHeadDim>
struct RowState {
  float run_max = -INFINITY;
  float run_sum = 0.0f;
  float o[kHeadDim / 8][4];

  __device__ RowState() {
#pragma unroll
    for (int n = 0; n < kHeadDim / 8; ++n)
      o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
  }

  // The sum over the lanes of g (call once, after the last tile).
  __device__ float total_sum() const {
    float sum = run_sum;
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    sum += __shfl_xor_sync(0xffffffffu, sum, 2);
    return sum;
  }

  // Lane (g, r)'s 8 output dimensions c * 32 + r * 8 ... (unnormalised).
  __device__ void output(int c, float (&v)[8]) const {
#pragma unroll
    for (int w = 0; w < 4; ++w) {
      v[2 * w] = o[c * 4 + w][0] + o[c * 4 + w][2];
      v[2 * w + 1] = o[c * 4 + w][1] + o[c * 4 + w][3];
    }
  }
};

// Attends the row to the tile of keys [j0, j0 + 16) in `tile`, of which those in
// [first_key, last_key] count; at least one of them must.
template <int kHeadDim, typename T>
__device__ __forceinline__ void attend_tile(const char* tile, const QueryFragments<kHeadDim>& q,
                                            int j0, int first_key, int last_key,
                                            RowState<kHeadDim>& state, int g, int r) {
  using F = TileFormat<kHeadDim, T>;
  constexpr int kC = F::kChunksC;
  const char* k_tile = tile;
  const char* v_tile = tile + F::kMatrixBytes;

  // Scores of head g (hi + lo rows) for keys 8 nt + 2 r + e of the tile.
  float acc[2][4];
#pragma unroll
  for (int nt = 0; nt < 2; ++nt) {
    acc[nt][0] = acc[nt][1] = acc[nt][2] = acc[nt][3] = 0.0f;
#pragma unroll
    for (int c = 0; c < kC; ++c) {
      std::uint32_t w[4];
      load_row_words<kHeadDim, T>(k_tile, nt * 8 + g, c, r, w);
      const std::uint32_t a0[4] = {q.hi[c][0], q.lo[c][0], q.hi[c][1], q.lo[c][1]};
      const std::uint32_t a1[4] = {q.hi[c][2], q.lo[c][2], q.hi[c][3], q.lo[c][3]};
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
      if constexpr (F::kFp8) x *= F::k_scales(tile)[key];
      const bool counts = j0 + key >= first_key && j0 + key <= last_key;
      score[nt][e] = counts ? x : -INFINITY;
      tile_max = fmaxf(tile_max, score[nt][e]);
    }
  }
  tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 1));
  tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 2));
  const float new_max = fmaxf(state.run_max, tile_max);
  const float correction = exp2f(state.run_max - new_max);
  state.run_max = new_max;
  float p[2][2];
  float tile_sum = 0.0f;
#pragma unroll
  for (int nt = 0; nt < 2; ++nt) {
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      p[nt][e] = exp2f(score[nt][e] - new_max);
      tile_sum += p[nt][e];
      if constexpr (F::kFp8) p[nt][e] *= F::v_scales(tile)[nt * 8 + 2 * r + e];
    }
  }
  state.run_sum = state.run_sum * correction + tile_sum;
#pragma unroll
  for (int n = 0; n < kC * 4; ++n) {
#pragma unroll
    for (int e = 0; e < 4; ++e)
      state.o[n][e] *= correction;
  }

  // Output += P V: rows 0-7 the rounded probabilities, rows 8-15 their remainders.
  std::uint32_t a[4];
  split_bf16(p[0][0], p[0][1], a[0], a[1]);
  split_bf16(p[1][0], p[1][1], a[2], a[3]);
#pragma unroll
  for (int c = 0; c < kC; ++c) {
    std::uint32_t v0[4];
    std::uint32_t v1[4];
    load_row_words<kHeadDim, T>(v_tile, g, c, r, v0);
    load_row_words<kHeadDim, T>(v_tile, 8 + g, c, r, v1);
#pragma unroll
    for (int w = 0; w < 4; ++w)
      ptx::mma_bf16(state.o[c * 4 + w], a, ptx::transpose_8x8(v0[w]), ptx::transpose_8x8(v1[w]));
  }
}

}  // namespace conveyor::cuda::mma_attention
