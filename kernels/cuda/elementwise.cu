// Memory-bound ops: each reads its inputs once and writes its output once.
#include <cstdint>
#include <initializer_list>
#include <type_traits>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/silu.h"

namespace conveyor::cuda {
namespace {

constexpr int kThreads = 256;

unsigned grid_for(std::int64_t n, int per_block) {
  const std::int64_t blocks = (n + per_block - 1) / per_block;
  // A grid-stride loop covers the rest; 65535 * 8 blocks fill any current GPU.
  return static_cast<unsigned>(blocks < 65535 * 8 ? (blocks > 0 ? blocks : 1) : 65535 * 8);
}

// Whether n floats at each pointer can move four at a time: 16-byte aligned, n a multiple
// of 4. The wide kernels below do per element exactly what the narrow ones do.
bool by_four(std::int64_t n, std::initializer_list<const void*> pointers) {
  if (n % 4 != 0) return false;
  for (const void* p : pointers) {
    if (p != nullptr && reinterpret_cast<std::uintptr_t>(p) % 16 != 0) return false;
  }
  return true;
}

__device__ __forceinline__ std::uint32_t bf16_pair(float a, float b) {
  const __nv_bfloat162 pair = __floats2bfloat162_rn(a, b);
  return *reinterpret_cast<const std::uint32_t*>(&pair);
}

// f16 saturating at the f16 range; NaN stays NaN (fmaxf would turn it into the bound).
__device__ __forceinline__ __half saturated_f16(float v) {
  return __float2half_rn(isnan(v) ? v : fminf(fmaxf(v, -65504.0f), 65504.0f));
}

__global__ void convert_to_bf16_by_four(const float4* in, uint2* out, std::int64_t n4) {
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n4;
       i += stride) {
    const float4 v = in[i];
    out[i] = make_uint2(bf16_pair(v.x, v.y), bf16_pair(v.z, v.w));
  }
}

__global__ void convert_to_f16_by_four(const float4* in, uint2* out, std::int64_t n4) {
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n4;
       i += stride) {
    const float4 v = in[i];
    const __half2 a(saturated_f16(v.x), saturated_f16(v.y));
    const __half2 b(saturated_f16(v.z), saturated_f16(v.w));
    out[i] = make_uint2(*reinterpret_cast<const std::uint32_t*>(&a),
                        *reinterpret_cast<const std::uint32_t*>(&b));
  }
}

__global__ void swiglu_by_four(const float4* gate, const float4* up, std::int64_t n4, float4* out) {
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n4;
       i += stride) {
    const float4 g = gate[i];
    const float4 u = up[i];
    out[i] = make_float4(silu_times(g.x, u.x), silu_times(g.y, u.y), silu_times(g.z, u.z),
                         silu_times(g.w, u.w));
  }
}

__device__ __forceinline__ std::uint32_t swiglu_pair(std::uint32_t gate, std::uint32_t up) {
  const float2 g = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&gate));
  const float2 u = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&up));
  return bf16_pair(silu_times(g.x, u.x), silu_times(g.y, u.y));
}

// Eight bf16 values at a time.
__global__ void swiglu_bf16_by_eight(const uint4* gate, const uint4* up, std::int64_t n8,
                                     uint4* out) {
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n8;
       i += stride) {
    const uint4 g = gate[i];
    const uint4 u = up[i];
    out[i] = make_uint4(swiglu_pair(g.x, u.x), swiglu_pair(g.y, u.y), swiglu_pair(g.z, u.z),
                        swiglu_pair(g.w, u.w));
  }
}

__global__ void swiglu_bf16_kernel(const __nv_bfloat16* gate, const __nv_bfloat16* up,
                                   std::int64_t n, __nv_bfloat16* out) {
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += stride)
    out[i] = __float2bfloat16_rn(silu_times(__bfloat162float(gate[i]), __bfloat162float(up[i])));
}

__global__ void convert_to_bf16_kernel(const float* in, __nv_bfloat16* out, std::int64_t n) {
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += stride)
    out[i] = __float2bfloat16_rn(in[i]);
}

__global__ void convert_to_f16_kernel(const float* in, __half* out, std::int64_t n) {
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += stride) {
    out[i] = saturated_f16(in[i]);
  }
}

__global__ void add_bias_kernel(float* y, const float* bias, std::int64_t n, std::int64_t cols) {
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += stride)
    y[i] += bias[i % cols];
}

__global__ void swiglu_kernel(const float* gate, const float* up, std::int64_t n, float* out) {
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += stride) {
    out[i] = silu_times(gate[i], up[i]);
  }
}

// One block per row; kVec values a thread at a time (4: float4 loads and stores).
template <int kVec>
__global__ void rmsnorm_kernel(float* x, const float* residual_add, const std::int64_t* rows_index,
                               std::int64_t cols, const float* weight, float eps, float* out) {
  using Vec = std::conditional_t<kVec == 4, float4, float>;
  const std::int64_t r = blockIdx.x;
  float* row = x + (rows_index != nullptr ? rows_index[r] : r) * cols;
  const float* add = residual_add != nullptr ? residual_add + r * cols : nullptr;
  const std::int64_t units = cols / kVec;
  auto* row_v = reinterpret_cast<Vec*>(row);
  const auto* add_v = reinterpret_cast<const Vec*>(add);
  double sum = 0;
  for (std::int64_t i = threadIdx.x; i < units; i += blockDim.x) {
    Vec v = row_v[i];
    if (add != nullptr) {
      const Vec a = add_v[i];
      if constexpr (kVec == 4) {
        v.x += a.x;
        v.y += a.y;
        v.z += a.z;
        v.w += a.w;
      } else {
        v += a;
      }
      row_v[i] = v;
    }
    if constexpr (kVec == 4) {
      sum += static_cast<double>(v.x) * v.x;
      sum += static_cast<double>(v.y) * v.y;
      sum += static_cast<double>(v.z) * v.z;
      sum += static_cast<double>(v.w) * v.w;
    } else {
      sum += static_cast<double>(v) * v;
    }
  }
  __shared__ double partial[kThreads / 32];
  for (int offset = 16; offset > 0; offset /= 2)
    sum += __shfl_xor_sync(0xffffffffu, sum, offset);
  if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = sum;
  __syncthreads();
  __shared__ float inv_rms;
  if (threadIdx.x == 0) {
    double total = 0;
    for (int w = 0; w < kThreads / 32; ++w)
      total += partial[w];
    const float variance = static_cast<float>(total / static_cast<double>(cols));
    inv_rms = 1.0f / sqrtf(variance + eps);
  }
  __syncthreads();
  auto* dst = reinterpret_cast<Vec*>(out + r * cols);
  const auto* weight_v = reinterpret_cast<const Vec*>(weight);
  for (std::int64_t i = threadIdx.x; i < units; i += blockDim.x) {
    const Vec v = row_v[i];
    const Vec w = weight_v[i];
    if constexpr (kVec == 4) {
      dst[i] = make_float4(w.x * (v.x * inv_rms), w.y * (v.y * inv_rms), w.z * (v.z * inv_rms),
                           w.w * (v.w * inv_rms));
    } else {
      dst[i] = w * (v * inv_rms);
    }
  }
}

template <typename T>
__device__ float widen(T v);
template <>
__device__ float widen<float>(float v) {
  return v;
}
template <>
__device__ float widen<__nv_bfloat16>(__nv_bfloat16 v) {
  return __bfloat162float(v);
}
template <>
__device__ float widen<__half>(__half v) {
  return __half2float(v);
}

template <typename T>
__global__ void embed_kernel(const T* table, const std::int32_t* tokens, std::int64_t cols,
                             float* out) {
  const std::int64_t t = blockIdx.x;
  const T* src = table + static_cast<std::int64_t>(tokens[t]) * cols;
  for (std::int64_t i = threadIdx.x; i < cols; i += blockDim.x)
    out[t * cols + i] = widen(src[i]);
}

}  // namespace

void convert_to_bf16(const float* in, __nv_bfloat16* out, std::int64_t n, cudaStream_t stream) {
  if (n == 0) return;
  if (by_four(n, {in, out})) {
    convert_to_bf16_by_four<<<grid_for(n / 4, kThreads), kThreads, 0, stream>>>(
        reinterpret_cast<const float4*>(in), reinterpret_cast<uint2*>(out), n / 4);
  } else {
    convert_to_bf16_kernel<<<grid_for(n, kThreads), kThreads, 0, stream>>>(in, out, n);
  }
  CONVEYOR_CUDA_LAUNCHED();
}

void convert_to_f16(const float* in, __half* out, std::int64_t n, cudaStream_t stream) {
  if (n == 0) return;
  if (by_four(n, {in, out})) {
    convert_to_f16_by_four<<<grid_for(n / 4, kThreads), kThreads, 0, stream>>>(
        reinterpret_cast<const float4*>(in), reinterpret_cast<uint2*>(out), n / 4);
  } else {
    convert_to_f16_kernel<<<grid_for(n, kThreads), kThreads, 0, stream>>>(in, out, n);
  }
  CONVEYOR_CUDA_LAUNCHED();
}

void add_bias(float* y, const float* bias, std::int64_t rows, std::int64_t cols,
              cudaStream_t stream) {
  if (rows * cols == 0) return;
  add_bias_kernel<<<grid_for(rows * cols, kThreads), kThreads, 0, stream>>>(y, bias, rows * cols,
                                                                            cols);
  CONVEYOR_CUDA_LAUNCHED();
}

void rmsnorm(float* x, const float* residual_add, const std::int64_t* rows_index, std::int64_t rows,
             std::int64_t cols, const float* weight, float eps, float* out, cudaStream_t stream) {
  if (rows == 0) return;
  if (by_four(cols, {x, residual_add, weight, out})) {
    rmsnorm_kernel<4><<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(
        x, residual_add, rows_index, cols, weight, eps, out);
  } else {
    rmsnorm_kernel<1><<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(
        x, residual_add, rows_index, cols, weight, eps, out);
  }
  CONVEYOR_CUDA_LAUNCHED();
}

void swiglu(const float* gate, const float* up, std::int64_t n, float* out, cudaStream_t stream) {
  if (n == 0) return;
  if (by_four(n, {gate, up, out})) {
    swiglu_by_four<<<grid_for(n / 4, kThreads), kThreads, 0, stream>>>(
        reinterpret_cast<const float4*>(gate), reinterpret_cast<const float4*>(up), n / 4,
        reinterpret_cast<float4*>(out));
  } else {
    swiglu_kernel<<<grid_for(n, kThreads), kThreads, 0, stream>>>(gate, up, n, out);
  }
  CONVEYOR_CUDA_LAUNCHED();
}

void swiglu_bf16(const __nv_bfloat16* gate, const __nv_bfloat16* up, std::int64_t n,
                 __nv_bfloat16* out, cudaStream_t stream) {
  if (n == 0) return;
  // by_four counts floats: eight bf16 values are four floats' bytes.
  if (n % 8 == 0 && by_four(n / 2, {gate, up, out})) {
    swiglu_bf16_by_eight<<<grid_for(n / 8, kThreads), kThreads, 0, stream>>>(
        reinterpret_cast<const uint4*>(gate), reinterpret_cast<const uint4*>(up), n / 8,
        reinterpret_cast<uint4*>(out));
  } else {
    swiglu_bf16_kernel<<<grid_for(n, kThreads), kThreads, 0, stream>>>(gate, up, n, out);
  }
  CONVEYOR_CUDA_LAUNCHED();
}

void embed_f32(const float* table, const DeviceStep& step, std::int64_t cols, float* out,
               cudaStream_t stream) {
  if (step.num_tokens == 0) return;
  embed_kernel<<<static_cast<unsigned>(step.num_tokens), kThreads, 0, stream>>>(table, step.tokens,
                                                                                cols, out);
  CONVEYOR_CUDA_LAUNCHED();
}

void embed_bf16(const __nv_bfloat16* table, const DeviceStep& step, std::int64_t cols, float* out,
                cudaStream_t stream) {
  if (step.num_tokens == 0) return;
  embed_kernel<<<static_cast<unsigned>(step.num_tokens), kThreads, 0, stream>>>(table, step.tokens,
                                                                                cols, out);
  CONVEYOR_CUDA_LAUNCHED();
}

void embed_f16(const __half* table, const DeviceStep& step, std::int64_t cols, float* out,
               cudaStream_t stream) {
  if (step.num_tokens == 0) return;
  embed_kernel<<<static_cast<unsigned>(step.num_tokens), kThreads, 0, stream>>>(table, step.tokens,
                                                                                cols, out);
  CONVEYOR_CUDA_LAUNCHED();
}

}  // namespace conveyor::cuda
