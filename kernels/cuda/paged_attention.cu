// Paged causal attention with grouped K/V heads, for decode and prefill alike.
//
// One block of four warps per (query row, K/V head). The warps split the row's keys
// (key j to warp j mod 4); each keeps an online softmax (running max, sum and
// weighted V) for every query head of the group, so each K and V row is read once per
// group rather than once per query head. Lanes split head_dim (dimension lane + 32 i),
// so every K/V row load is coalesced. The four partial softmaxes merge in shared
// memory at the end. Scores are f32 dot products times the scale, as the CPU twin.
#include <cfloat>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"

namespace conveyor::cuda {
namespace {

constexpr int kWarps = 4;

template <int kDimsPerLane>
__global__ void __launch_bounds__(kWarps * 32)
    paged_attention_kernel(const float* q, const float* k_cache, const float* v_cache,
                           DeviceStep step, DeviceAttention cfg, float* out) {
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
  const std::int32_t* table = step.block_tables + seq.table_offset;

  float qv[kMaxGroup][kDimsPerLane];
  float acc[kMaxGroup][kDimsPerLane];
  float run_max[kMaxGroup];
  float run_sum[kMaxGroup];
  const std::int64_t q_width = static_cast<std::int64_t>(cfg.num_heads) * head_dim;
#pragma unroll
  for (int g = 0; g < kMaxGroup; ++g) {
    run_max[g] = -INFINITY;
    run_sum[g] = 0.0f;
#pragma unroll
    for (int i = 0; i < kDimsPerLane; ++i) {
      const int d = lane + 32 * i;
      acc[g][i] = 0.0f;
      qv[g][i] =
          (g < group && d < head_dim)
              ? q[t * q_width + static_cast<std::int64_t>(kv_head * group + g) * head_dim + d]
              : 0.0f;
    }
  }

  for (int j = first_key + warp; j <= position; j += kWarps) {
    const std::int64_t slot =
        static_cast<std::int64_t>(table[j / cfg.block_size]) * cfg.block_size + j % cfg.block_size;
    const float* k_row =
        k_cache + slot * cfg.kv_dim + static_cast<std::int64_t>(kv_head) * head_dim;
    const float* v_row =
        v_cache + slot * cfg.kv_dim + static_cast<std::int64_t>(kv_head) * head_dim;
    float kr[kDimsPerLane];
    float vr[kDimsPerLane];
#pragma unroll
    for (int i = 0; i < kDimsPerLane; ++i) {
      const int d = lane + 32 * i;
      kr[i] = d < head_dim ? k_row[d] : 0.0f;
      vr[i] = d < head_dim ? v_row[d] : 0.0f;
    }
#pragma unroll
    for (int g = 0; g < kMaxGroup; ++g) {
      if (g >= group) break;
      float dot = 0.0f;
#pragma unroll
      for (int i = 0; i < kDimsPerLane; ++i)
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
      for (int i = 0; i < kDimsPerLane; ++i)
        acc[g][i] = acc[g][i] * correction + p * vr[i];
      run_max[g] = new_max;
    }
  }

  __shared__ float shared_max[kWarps][kMaxGroup];
  __shared__ float shared_sum[kWarps][kMaxGroup];
  __shared__ float shared_acc[kWarps][kMaxGroup][kMaxHeadDim];
#pragma unroll
  for (int g = 0; g < kMaxGroup; ++g) {
    if (g >= group) break;
    if (lane == 0) {
      shared_max[warp][g] = run_max[g];
      shared_sum[warp][g] = run_sum[g];
    }
#pragma unroll
    for (int i = 0; i < kDimsPerLane; ++i) {
      const int d = lane + 32 * i;
      if (d < head_dim) shared_acc[warp][g][d] = acc[g][i];
    }
  }
  __syncthreads();
  for (int idx = threadIdx.x; idx < group * head_dim; idx += blockDim.x) {
    const int g = idx / head_dim;
    const int d = idx % head_dim;
    float m = -INFINITY;
    for (int w = 0; w < kWarps; ++w)
      m = fmaxf(m, shared_max[w][g]);
    float total = 0.0f;
    float value = 0.0f;
    for (int w = 0; w < kWarps; ++w) {
      const float weight = shared_sum[w][g] == 0.0f ? 0.0f : expf(shared_max[w][g] - m);
      total += shared_sum[w][g] * weight;
      value += shared_acc[w][g][d] * weight;
    }
    out[t * q_width + static_cast<std::int64_t>(kv_head * group + g) * head_dim + d] =
        value / total;
  }
}

}  // namespace

void paged_attention(const float* q, const float* k_cache, const float* v_cache,
                     const DeviceStep& step, const DeviceAttention& config, float* out,
                     cudaStream_t stream) {
  if (step.num_tokens == 0) return;
  const dim3 grid(static_cast<unsigned>(step.num_tokens),
                  static_cast<unsigned>(config.num_kv_heads));
  const int dims_per_lane = (config.head_dim + 31) / 32;
  if (dims_per_lane <= 1) {
    paged_attention_kernel<1>
        <<<grid, kWarps * 32, 0, stream>>>(q, k_cache, v_cache, step, config, out);
  } else if (dims_per_lane <= 2) {
    paged_attention_kernel<2>
        <<<grid, kWarps * 32, 0, stream>>>(q, k_cache, v_cache, step, config, out);
  } else if (dims_per_lane <= 4) {
    paged_attention_kernel<4>
        <<<grid, kWarps * 32, 0, stream>>>(q, k_cache, v_cache, step, config, out);
  } else {
    paged_attention_kernel<8>
        <<<grid, kWarps * 32, 0, stream>>>(q, k_cache, v_cache, step, config, out);
  }
  CONVEYOR_CUDA_LAUNCHED();
}

}  // namespace conveyor::cuda
