// RoPE and the K/V store: per-token work indexed by the step's positions and slots.
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"

namespace conveyor::cuda {
namespace {

constexpr int kThreads = 128;

// One block per token; threads over (head, pair) of q's heads then k's.
__global__ void rope_kernel(float* q, float* k, const std::int32_t* positions, DeviceRope rope) {
  const std::int64_t t = blockIdx.x;
  const int half = rope.head_dim / 2;
  // The angle is rounded to f32 as the reference does; its cos/sin are evaluated in
  // double and rounded once, as the CPU twin does.
  const float position = static_cast<float>(positions[t]);
  const int q_pairs = q != nullptr ? rope.num_heads * half : 0;
  const int k_pairs = k != nullptr ? rope.num_kv_heads * half : 0;
  for (int p = threadIdx.x; p < q_pairs + k_pairs; p += blockDim.x) {
    const bool is_q = p < q_pairs;
    const int local = is_q ? p : p - q_pairs;
    const int head = local / half;
    const int i = local % half;
    float* x = is_q ? q + (t * rope.num_heads + head) * rope.head_dim
                    : k + (t * rope.num_kv_heads + head) * rope.head_dim;
    double s = 0;
    double c = 0;
    sincos(static_cast<double>(position * rope.inv_freq[i]), &s, &c);
    const float sin_f = static_cast<float>(s);
    const float cos_f = static_cast<float>(c);
    const int ia = rope.interleaved ? 2 * i : i;
    const int ib = rope.interleaved ? 2 * i + 1 : i + half;
    const float a = x[ia];
    const float b = x[ib];
    x[ia] = a * cos_f - b * sin_f;
    x[ib] = b * cos_f + a * sin_f;
  }
}

template <typename T>
__device__ T narrow(float v);
template <>
__device__ float narrow<float>(float v) {
  return v;
}
template <>
__device__ __nv_bfloat16 narrow<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

template <typename T>
__global__ void store_kv_kernel(const float* k, const float* v, const std::int64_t* slots,
                                T* k_cache, T* v_cache, std::int64_t kv_dim) {
  const std::int64_t t = blockIdx.x;
  const std::int64_t slot = slots[t];
  for (std::int64_t i = threadIdx.x; i < kv_dim; i += blockDim.x) {
    k_cache[slot * kv_dim + i] = narrow<T>(k[t * kv_dim + i]);
    v_cache[slot * kv_dim + i] = narrow<T>(v[t * kv_dim + i]);
  }
}

}  // namespace

void rope(float* q, float* k, const DeviceStep& step, const DeviceRope& config,
          cudaStream_t stream) {
  if (step.num_tokens == 0 || (q == nullptr && k == nullptr)) return;
  rope_kernel<<<static_cast<unsigned>(step.num_tokens), kThreads, 0, stream>>>(q, k, step.positions,
                                                                               config);
  CONVEYOR_CUDA_LAUNCHED();
}

void store_kv(const float* k, const float* v, const DeviceStep& step, void* k_cache, void* v_cache,
              std::int64_t kv_dim, bool bf16, cudaStream_t stream) {
  if (step.num_tokens == 0) return;
  const auto blocks = static_cast<unsigned>(step.num_tokens);
  if (bf16) {
    store_kv_kernel<<<blocks, kThreads, 0, stream>>>(k, v, step.slots,
                                                     static_cast<__nv_bfloat16*>(k_cache),
                                                     static_cast<__nv_bfloat16*>(v_cache), kv_dim);
  } else {
    store_kv_kernel<<<blocks, kThreads, 0, stream>>>(k, v, step.slots, static_cast<float*>(k_cache),
                                                     static_cast<float*>(v_cache), kv_dim);
  }
  CONVEYOR_CUDA_LAUNCHED();
}

}  // namespace conveyor::cuda
