// Paged causal attention with grouped K/V heads, for decode and prefill alike. bf16 and
// FP8 K/V at the usual head sizes run on the tensor cores (mma_attention.cu); the rest
// (f32 K/V, other head sizes, or CONVEYOR_CUDA_ATTENTION=simt) here, in two kernels: a
// tiled one for the usual head sizes (below, tiled_attention_kernel) and the general one
// described here.
//
// One block of four warps per (query row, K/V head). The warps split the row's keys
// (key j to warp j mod 4); each keeps an online softmax (running max, sum and
// weighted V) for every query head of the group, so each K and V row is read once per
// group rather than once per query head. Each lane holds N consecutive dimensions
// (lane * N ...), so a warp reads a K or V row with one coalesced vector load per
// lane (16 bytes for f32 at head_dim 128, 8 for bf16). The four partial softmaxes
// merge in shared memory at the end. Scores are f32 dot products times the scale, as
// the CPU twin; bf16 K/V are widened to f32 as they are read, FP8 K/V decoded and
// multiplied by their head's scale.
#include <cuda_bf16.h>
#include <cuda_fp8.h>

#include <cfloat>
#include <type_traits>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/e4m3.h"

namespace conveyor::cuda {
namespace {

constexpr int kWarps = 4;

// N consecutive elements from p, widened to f32; elements at or past `valid` are 0.
// `full`: all N are valid and p is aligned for one vector load.
template <int N>
__device__ void load_dims(const float* p, bool full, int valid, float (&out)[N]) {
  if constexpr (N == 4) {
    if (full) {
      const float4 v = *reinterpret_cast<const float4*>(p);
      out[0] = v.x;
      out[1] = v.y;
      out[2] = v.z;
      out[3] = v.w;
      return;
    }
  } else if constexpr (N == 2) {
    if (full) {
      const float2 v = *reinterpret_cast<const float2*>(p);
      out[0] = v.x;
      out[1] = v.y;
      return;
    }
  }
#pragma unroll
  for (int i = 0; i < N; ++i)
    out[i] = i < valid ? p[i] : 0.0f;
}

template <int N>
__device__ void load_dims(const __nv_bfloat16* p, bool full, int valid, float (&out)[N]) {
  if constexpr (N == 4) {
    if (full) {
      const uint2 raw = *reinterpret_cast<const uint2*>(p);
      const float2 a = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&raw.x));
      const float2 b = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&raw.y));
      out[0] = a.x;
      out[1] = a.y;
      out[2] = b.x;
      out[3] = b.y;
      return;
    }
  } else if constexpr (N == 2) {
    if (full) {
      const float2 a = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(p));
      out[0] = a.x;
      out[1] = a.y;
      return;
    }
  }
#pragma unroll
  for (int i = 0; i < N; ++i)
    out[i] = i < valid ? __bfloat162float(p[i]) : 0.0f;
}

// FP8 codes, decoded exactly; the scale comes after (scale_fp8).
template <int N>
__device__ void load_dims(const std::uint8_t* p, bool /*full*/, int valid, float (&out)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i)
    out[i] = i < valid ? decode_e4m3(p[i]) : 0.0f;
}

// An FP8 row times its head's scale (one rounding: the value the CPU dequantises to);
// nothing for f32 and bf16 rows.
template <typename T, int N>
__device__ __forceinline__ void scale_fp8(float (&row)[N], const float* scales, std::int64_t slot,
                                          int num_kv_heads, int kv_head) {
  if constexpr (std::is_same_v<T, std::uint8_t>) {
    const float s = scales[slot * num_kv_heads + kv_head];
#pragma unroll
    for (int i = 0; i < N; ++i)
      row[i] = __fmul_rn(row[i], s);
  }
}

template <int N, typename T>
__global__ void __launch_bounds__(kWarps * 32)
    paged_attention_kernel(const float* q, const T* k_cache, const T* v_cache, DeviceStep step,
                           DeviceAttention cfg, float* out) {
  const int t = blockIdx.x;
  const int kv_head = blockIdx.y;
  const int s = step.row_sequence[t];
  if (s < 0) return;
  const DeviceSequence seq = step.sequences[s];
  const int position = seq.start_position + (t - seq.first_row);
  const int first_key = cfg.sliding_window > 0 ? max(0, position - cfg.sliding_window + 1) : 0;
  const int group = cfg.num_heads / cfg.num_kv_heads;
  const int warp = threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  const int head_dim = cfg.head_dim;
  const int first_dim = lane * N;
  const int valid = head_dim - first_dim;  // may be <= 0: this lane holds no dimension
  const bool full = head_dim == 32 * N;
  const std::int32_t* table = step.block_tables + seq.table_offset;

  float qv[kMaxGroup][N];
  float acc[kMaxGroup][N];
  float run_max[kMaxGroup];
  float run_sum[kMaxGroup];
  const std::int64_t q_width = static_cast<std::int64_t>(cfg.num_heads) * head_dim;
  const float* q_row = q + t * q_width + static_cast<std::int64_t>(kv_head * group) * head_dim;
#pragma unroll
  for (int g = 0; g < kMaxGroup; ++g) {
    run_max[g] = -INFINITY;
    run_sum[g] = 0.0f;
#pragma unroll
    for (int i = 0; i < N; ++i) {
      acc[g][i] = 0.0f;
      qv[g][i] = (g < group && i < valid) ? q_row[g * head_dim + first_dim + i] : 0.0f;
    }
  }

  const std::int64_t head_offset = static_cast<std::int64_t>(kv_head) * head_dim + first_dim;
  for (int j = first_key + warp; j <= position; j += kWarps) {
    const std::int64_t slot =
        static_cast<std::int64_t>(table[j / cfg.block_size]) * cfg.block_size + j % cfg.block_size;
    float kr[N];
    float vr[N];
    load_dims<N>(k_cache + slot * cfg.kv_dim + head_offset, full, valid, kr);
    load_dims<N>(v_cache + slot * cfg.kv_dim + head_offset, full, valid, vr);
    scale_fp8<T>(kr, cfg.k_scales, slot, cfg.num_kv_heads, kv_head);
    scale_fp8<T>(vr, cfg.v_scales, slot, cfg.num_kv_heads, kv_head);
#pragma unroll
    for (int g = 0; g < kMaxGroup; ++g) {
      if (g >= group) break;
      float dot = 0.0f;
#pragma unroll
      for (int i = 0; i < N; ++i)
        dot += qv[g][i] * kr[i];
#pragma unroll
      for (int offset = 16; offset > 0; offset /= 2)
        dot += __shfl_xor_sync(0xffffffffu, dot, offset);
      const float score = dot * cfg.scale;
      const float new_max = fmaxf(run_max[g], score);
      const float correction = expf(run_max[g] - new_max);
      const float p = expf(score - new_max);
      run_sum[g] = run_sum[g] * correction + p;
#pragma unroll
      for (int i = 0; i < N; ++i)
        acc[g][i] = acc[g][i] * correction + p * vr[i];
      run_max[g] = new_max;
    }
  }

  // Shared: max and sum [warps][group], then acc [warps][group][head_dim].
  extern __shared__ float shared[];
  float* shared_max = shared;
  float* shared_sum = shared + kWarps * group;
  float* shared_acc = shared + 2 * kWarps * group;
#pragma unroll
  for (int g = 0; g < kMaxGroup; ++g) {
    if (g >= group) break;
    if (lane == 0) {
      shared_max[warp * group + g] = run_max[g];
      shared_sum[warp * group + g] = run_sum[g];
    }
#pragma unroll
    for (int i = 0; i < N; ++i) {
      if (i < valid) shared_acc[(warp * group + g) * head_dim + first_dim + i] = acc[g][i];
    }
  }
  __syncthreads();
  // Per head, once: each warp's weight exp(max_w - max) (kept in shared_max) and the
  // inverse of the total; then every output element is a weighted sum.
  __shared__ float inverse_total[kMaxGroup];
  if (threadIdx.x < group) {
    const int g = threadIdx.x;
    float m = -INFINITY;
    for (int w = 0; w < kWarps; ++w)
      m = fmaxf(m, shared_max[w * group + g]);
    float total = 0.0f;
    for (int w = 0; w < kWarps; ++w) {
      const float sum = shared_sum[w * group + g];
      // A warp that saw no key has sum 0 and max -inf: it adds nothing.
      const float weight = sum == 0.0f ? 0.0f : expf(shared_max[w * group + g] - m);
      shared_max[w * group + g] = weight;
      total += sum * weight;
    }
    inverse_total[g] = 1.0f / total;
  }
  __syncthreads();
  for (int idx = threadIdx.x; idx < group * head_dim; idx += blockDim.x) {
    const int g = idx / head_dim;
    const int d = idx % head_dim;
    float value = 0.0f;
    for (int w = 0; w < kWarps; ++w)
      value += shared_acc[(w * group + g) * head_dim + d] * shared_max[w * group + g];
    out[t * q_width + static_cast<std::int64_t>(kv_head * group + g) * head_dim + d] =
        value * inverse_total[g];
  }
}

// The tiled kernel, for head_dim 64, 128 or 256: each lane holds kDims = 8
// consecutive dimensions of one key, so head_dim / 8 lanes share a key and a warp
// scores 32 / (head_dim / 8) keys at once; two passes are loaded before either is
// used (four with DeviceAttention::passes 4), so each lane has four 16-byte (bf16)
// or eight (f32) loads in flight, or twice as many. Every
// (warp, key position in the warp) keeps its own online softmax per query head of
// the group; they merge in shared memory at the end. kGroup is the group size
// rounded up to a power of two (the extra heads are masked).
constexpr int kDims = 8;

__device__ void load8(const float* p, float (&out)[kDims]) {
  const float4 a = *reinterpret_cast<const float4*>(p);
  const float4 b = *reinterpret_cast<const float4*>(p + 4);
  out[0] = a.x;
  out[1] = a.y;
  out[2] = a.z;
  out[3] = a.w;
  out[4] = b.x;
  out[5] = b.y;
  out[6] = b.z;
  out[7] = b.w;
}

__device__ void load8(const __nv_bfloat16* p, float (&out)[kDims]) {
  const uint4 raw = *reinterpret_cast<const uint4*>(p);
  const unsigned words[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 f = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&words[i]));
    out[2 * i] = f.x;
    out[2 * i + 1] = f.y;
  }
}

// Eight FP8 codes (8 bytes), decoded exactly in pairs.
__device__ void load8(const std::uint8_t* p, float (&out)[kDims]) {
  const uint2 raw = *reinterpret_cast<const uint2*>(p);
  const unsigned words[2] = {raw.x, raw.y};
#pragma unroll
  for (int w = 0; w < 2; ++w) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const auto pair = static_cast<__nv_fp8x2_storage_t>(words[w] >> (16 * h));
      const float2 f = __half22float2(__half2(__nv_cvt_fp8x2_to_halfraw2(pair, __NV_E4M3)));
      out[4 * w + 2 * h] = f.x;
      out[4 * w + 2 * h + 1] = f.y;
    }
  }
}

template <int kHeadDim, int kGroup, int kPasses, typename T>
__global__ void __launch_bounds__(kWarps * 32)
    tiled_attention_kernel(const float* q, const T* k_cache, const T* v_cache, DeviceStep step,
                           DeviceAttention cfg, float* out) {
  constexpr int kLanesPerKey = kHeadDim / kDims;
  constexpr int kKeysPerWarp = 32 / kLanesPerKey;
  constexpr int kSlots = kWarps * kKeysPerWarp;  // keys a block scores per pass
  const int t = blockIdx.x;
  const int kv_head = blockIdx.y;
  const int s = step.row_sequence[t];
  if (s < 0) return;
  const DeviceSequence seq = step.sequences[s];
  const int position = seq.start_position + (t - seq.first_row);
  const int first_key = cfg.sliding_window > 0 ? max(0, position - cfg.sliding_window + 1) : 0;
  const int group = cfg.num_heads / cfg.num_kv_heads;
  const int warp = threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  const int slot_index = warp * kKeysPerWarp + lane / kLanesPerKey;
  const int first_dim = (lane % kLanesPerKey) * kDims;
  const std::int32_t* table = step.block_tables + seq.table_offset;

  const std::int64_t q_width = static_cast<std::int64_t>(cfg.num_heads) * kHeadDim;
  const float* q_row = q + t * q_width + static_cast<std::int64_t>(kv_head * group) * kHeadDim;
  float qv[kGroup][kDims];
  float acc[kGroup][kDims];
  float run_max[kGroup];
  float run_sum[kGroup];
#pragma unroll
  for (int g = 0; g < kGroup; ++g) {
    run_max[g] = -INFINITY;
    run_sum[g] = 0.0f;
#pragma unroll
    for (int i = 0; i < kDims; ++i) {
      acc[g][i] = 0.0f;
      qv[g][i] = g < group ? q_row[g * kHeadDim + first_dim + i] : 0.0f;
    }
  }

  const std::int64_t head_offset = static_cast<std::int64_t>(kv_head) * kHeadDim + first_dim;
  for (int base = first_key; base <= position; base += kSlots * kPasses) {
    float kr[kPasses][kDims];
    float vr[kPasses][kDims];
    bool live[kPasses];
#pragma unroll
    for (int u = 0; u < kPasses; ++u) {
      const int j = base + u * kSlots + slot_index;
      live[u] = j <= position;
      if (live[u]) {
        const std::int64_t slot =
            static_cast<std::int64_t>(table[j / cfg.block_size]) * cfg.block_size +
            j % cfg.block_size;
        load8(k_cache + slot * cfg.kv_dim + head_offset, kr[u]);
        load8(v_cache + slot * cfg.kv_dim + head_offset, vr[u]);
        scale_fp8<T>(kr[u], cfg.k_scales, slot, cfg.num_kv_heads, kv_head);
        scale_fp8<T>(vr[u], cfg.v_scales, slot, cfg.num_kv_heads, kv_head);
      } else {
#pragma unroll
        for (int i = 0; i < kDims; ++i) {
          kr[u][i] = 0.0f;
          vr[u][i] = 0.0f;
        }
      }
    }
#pragma unroll
    for (int u = 0; u < kPasses; ++u) {
#pragma unroll
      for (int g = 0; g < kGroup; ++g) {
        float dot = 0.0f;
#pragma unroll
        for (int i = 0; i < kDims; ++i)
          dot += qv[g][i] * kr[u][i];
          // Every lane shuffles (the lanes of one key are an aligned group), then only
          // live keys of real heads update.
#pragma unroll
        for (int offset = kLanesPerKey / 2; offset > 0; offset /= 2)
          dot += __shfl_xor_sync(0xffffffffu, dot, offset);
        if (!live[u] || g >= group) continue;
        const float score = dot * cfg.scale;
        const float new_max = fmaxf(run_max[g], score);
        const float correction = expf(run_max[g] - new_max);
        const float p = expf(score - new_max);
        run_sum[g] = run_sum[g] * correction + p;
#pragma unroll
        for (int i = 0; i < kDims; ++i)
          acc[g][i] = acc[g][i] * correction + p * vr[u][i];
        run_max[g] = new_max;
      }
    }
  }

  __shared__ float shared_max[kSlots][kGroup];
  __shared__ float shared_sum[kSlots][kGroup];
  __shared__ float shared_acc[kSlots][kGroup][kHeadDim];
#pragma unroll
  for (int g = 0; g < kGroup; ++g) {
    if (first_dim == 0) {
      shared_max[slot_index][g] = run_max[g];
      shared_sum[slot_index][g] = run_sum[g];
    }
#pragma unroll
    for (int i = 0; i < kDims; ++i)
      shared_acc[slot_index][g][first_dim + i] = acc[g][i];
  }
  __syncthreads();
  // Per head, once: each slot's weight exp(max_w - max) (kept in shared_max) and the
  // inverse of the total; then every output element is a weighted sum.
  __shared__ float inverse_total[kGroup];
  if (threadIdx.x < group) {
    const int g = threadIdx.x;
    float m = -INFINITY;
    for (int w = 0; w < kSlots; ++w)
      m = fmaxf(m, shared_max[w][g]);
    float total = 0.0f;
    for (int w = 0; w < kSlots; ++w) {
      const float sum = shared_sum[w][g];
      // A slot that saw no key has sum 0 and max -inf: it adds nothing.
      const float weight = sum == 0.0f ? 0.0f : expf(shared_max[w][g] - m);
      shared_max[w][g] = weight;
      total += sum * weight;
    }
    inverse_total[g] = 1.0f / total;
  }
  __syncthreads();
  for (int idx = threadIdx.x; idx < group * kHeadDim; idx += blockDim.x) {
    const int g = idx / kHeadDim;
    const int d = idx % kHeadDim;
    float value = 0.0f;
#pragma unroll
    for (int w = 0; w < kSlots; ++w)
      value += shared_acc[w][g][d] * shared_max[w][g];
    out[t * q_width + static_cast<std::int64_t>(kv_head * group + g) * kHeadDim + d] =
        value * inverse_total[g];
  }
}

template <int kHeadDim, int kGroup, typename T>
void launch_tiled_group(const float* q, const T* k, const T* v, const DeviceStep& step,
                        const DeviceAttention& config, float* out, cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>(step.num_tokens),
                  static_cast<unsigned>(config.num_kv_heads));
  if (config.passes >= 4) {
    tiled_attention_kernel<kHeadDim, kGroup, 4, T>
        <<<grid, kWarps * 32, 0, stream>>>(q, k, v, step, config, out);
  } else {
    tiled_attention_kernel<kHeadDim, kGroup, 2, T>
        <<<grid, kWarps * 32, 0, stream>>>(q, k, v, step, config, out);
  }
}

template <int kHeadDim, typename T>
bool launch_tiled(const float* q, const T* k, const T* v, const DeviceStep& step,
                  const DeviceAttention& config, float* out, cudaStream_t stream) {
  const int group = config.num_heads / config.num_kv_heads;
  if (group <= 1) {
    launch_tiled_group<kHeadDim, 1, T>(q, k, v, step, config, out, stream);
  } else if (group <= 2) {
    launch_tiled_group<kHeadDim, 2, T>(q, k, v, step, config, out, stream);
  } else if (group <= 4) {
    launch_tiled_group<kHeadDim, 4, T>(q, k, v, step, config, out, stream);
  } else if (group <= 8) {
    launch_tiled_group<kHeadDim, 8, T>(q, k, v, step, config, out, stream);
  } else {
    return false;
  }
  return true;
}

template <typename T>
void launch(const float* q, const void* k_cache, const void* v_cache, const DeviceStep& step,
            const DeviceAttention& config, float* out, cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>(step.num_tokens),
                  static_cast<unsigned>(config.num_kv_heads));
  const int group = config.num_heads / config.num_kv_heads;
  const std::size_t shared =
      static_cast<std::size_t>(kWarps * group * (2 + config.head_dim)) * sizeof(float);
  const auto* k = static_cast<const T*>(k_cache);
  const auto* v = static_cast<const T*>(v_cache);
  // The tiled kernel where the head size allows its 8-dimension lanes; the general
  // one (any head_dim up to 256) otherwise.
  if (config.head_dim == 64 && launch_tiled<64>(q, k, v, step, config, out, stream)) return;
  if (config.head_dim == 128 && launch_tiled<128>(q, k, v, step, config, out, stream)) return;
  if (config.head_dim == 256 && launch_tiled<256>(q, k, v, step, config, out, stream)) return;
  const int dims_per_lane = (config.head_dim + 31) / 32;
  if (dims_per_lane <= 1) {
    paged_attention_kernel<1, T><<<grid, kWarps * 32, shared, stream>>>(q, k, v, step, config, out);
  } else if (dims_per_lane <= 2) {
    paged_attention_kernel<2, T><<<grid, kWarps * 32, shared, stream>>>(q, k, v, step, config, out);
  } else if (dims_per_lane <= 4) {
    paged_attention_kernel<4, T><<<grid, kWarps * 32, shared, stream>>>(q, k, v, step, config, out);
  } else {
    paged_attention_kernel<8, T><<<grid, kWarps * 32, shared, stream>>>(q, k, v, step, config, out);
  }
}

}  // namespace

void paged_attention(const float* q, const void* k_cache, const void* v_cache,
                     const DeviceStep& step, const DeviceAttention& config, float* out,
                     cudaStream_t stream) {
  if (step.num_tokens == 0) return;
  if (config.tensor_cores && mma_paged_attention(q, k_cache, v_cache, step, config, out, stream)) {
    CONVEYOR_CUDA_LAUNCHED();
    return;
  }
  switch (config.kv_type) {
    case KvType::kBf16:
      launch<__nv_bfloat16>(q, k_cache, v_cache, step, config, out, stream);
      break;
    case KvType::kFp8:
      launch<std::uint8_t>(q, k_cache, v_cache, step, config, out, stream);
      break;
    case KvType::kF32:
      launch<float>(q, k_cache, v_cache, step, config, out, stream);
      break;
  }
  CONVEYOR_CUDA_LAUNCHED();
}

}  // namespace conveyor::cuda
