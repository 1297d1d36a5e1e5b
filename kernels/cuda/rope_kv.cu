// RoPE and the K/V store: per-token work indexed by the step's positions and slots.
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/e4m3.h"

namespace conveyor::cuda {
namespace {

constexpr int kThreads = 128;

// One block per token. The block first evaluates each pair's cos and sin once (every head
// of q and k turns its pair i by the same angle), then threads go over (head, pair) of q's
// heads then k's.
__global__ void rope_kernel(float* q, float* k, const std::int32_t* positions, DeviceRope rope) {
  const std::int64_t t = blockIdx.x;
  const int half = rope.head_dim / 2;
  extern __shared__ float angles[];  // cos [half], then sin [half]
  float* cos_of = angles;
  float* sin_of = angles + half;
  // The angle is rounded to f32 as the reference does; its cos/sin are evaluated in
  // double and rounded once, as the CPU twin does.
  const float position = static_cast<float>(positions[t]);
  for (int i = threadIdx.x; i < half; i += blockDim.x) {
    double s = 0;
    double c = 0;
    sincos(static_cast<double>(position * rope.inv_freq[i]), &s, &c);
    cos_of[i] = static_cast<float>(c);
    sin_of[i] = static_cast<float>(s);
  }
  __syncthreads();
  const int q_pairs = q != nullptr ? rope.num_heads * half : 0;
  const int k_pairs = k != nullptr ? rope.num_kv_heads * half : 0;
  for (int p = threadIdx.x; p < q_pairs + k_pairs; p += blockDim.x) {
    const bool is_q = p < q_pairs;
    const int local = is_q ? p : p - q_pairs;
    const int head = local / half;
    const int i = local % half;
    float* x = is_q ? q + (t * rope.num_heads + head) * rope.head_dim
                    : k + (t * rope.num_kv_heads + head) * rope.head_dim;
    const float sin_f = sin_of[i];
    const float cos_f = cos_of[i];
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
  if (slot < 0) return;  // kNoSlot: a padding row
  for (std::int64_t i = threadIdx.x; i < kv_dim; i += blockDim.x) {
    k_cache[slot * kv_dim + i] = narrow<T>(k[t * kv_dim + i]);
    v_cache[slot * kv_dim + i] = narrow<T>(v[t * kv_dim + i]);
  }
}

// One head's row of one token: its max|x| reduced over the warp, then its codes and
// scale written to the slot.
__device__ void store_head_fp8(const float* row, std::int64_t head_dim, std::uint8_t* codes,
                               float* scale) {
  float amax = 0.0f;
  for (std::int64_t i = threadIdx.x % 32; i < head_dim; i += 32)
    amax = fmaxf(amax, fabsf(row[i]));  // fmaxf skips a NaN, as the host's std::max does
  for (int offset = 16; offset > 0; offset /= 2)
    amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, offset));
  const float s = e4m3_scale(amax);
  for (std::int64_t i = threadIdx.x % 32; i < head_dim; i += 32)
    codes[i] = encode_e4m3(row[i], s);
  if (threadIdx.x % 32 == 0) *scale = s;
}

// One block per token, one warp per K/V head at a time.
__global__ void store_kv_fp8_kernel(const float* k, const float* v, const std::int64_t* slots,
                                    DeviceKv cache) {
  const std::int64_t t = blockIdx.x;
  const std::int64_t slot = slots[t];
  if (slot < 0) return;  // kNoSlot: a padding row
  const std::int64_t head_dim = cache.kv_dim / cache.num_kv_heads;
  auto* k_codes = static_cast<std::uint8_t*>(cache.k);
  auto* v_codes = static_cast<std::uint8_t*>(cache.v);
  for (int head = static_cast<int>(threadIdx.x) / 32; head < cache.num_kv_heads;
       head += static_cast<int>(blockDim.x) / 32) {
    const std::int64_t offset = head * head_dim;
    const std::int64_t scale = slot * cache.num_kv_heads + head;
    store_head_fp8(k + t * cache.kv_dim + offset, head_dim, k_codes + slot * cache.kv_dim + offset,
                   cache.k_scales + scale);
    store_head_fp8(v + t * cache.kv_dim + offset, head_dim, v_codes + slot * cache.kv_dim + offset,
                   cache.v_scales + scale);
  }
}

}  // namespace

void rope(float* q, float* k, const DeviceStep& step, const DeviceRope& config,
          cudaStream_t stream) {
  if (step.num_tokens == 0 || (q == nullptr && k == nullptr)) return;
  const std::size_t angles = static_cast<std::size_t>(config.head_dim / 2) * 2 * sizeof(float);
  rope_kernel<<<static_cast<unsigned>(step.num_tokens), kThreads, angles, stream>>>(
      q, k, step.positions, config);
  CONVEYOR_CUDA_LAUNCHED();
}

void store_kv(const float* k, const float* v, const DeviceStep& step, const DeviceKv& cache,
              cudaStream_t stream) {
  if (step.num_tokens == 0) return;
  const auto blocks = static_cast<unsigned>(step.num_tokens);
  switch (cache.type) {
    case KvType::kBf16:
      store_kv_kernel<<<blocks, kThreads, 0, stream>>>(
          k, v, step.slots, static_cast<__nv_bfloat16*>(cache.k),
          static_cast<__nv_bfloat16*>(cache.v), cache.kv_dim);
      break;
    case KvType::kFp8:
      store_kv_fp8_kernel<<<blocks, kThreads, 0, stream>>>(k, v, step.slots, cache);
      break;
    case KvType::kF32:
      store_kv_kernel<<<blocks, kThreads, 0, stream>>>(k, v, step.slots,
                                                       static_cast<float*>(cache.k),
                                                       static_cast<float*>(cache.v), cache.kv_dim);
      break;
  }
  CONVEYOR_CUDA_LAUNCHED();
}

}  // namespace conveyor::cuda
