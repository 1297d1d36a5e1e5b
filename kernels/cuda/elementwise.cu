// Memory-bound ops: each reads its inputs once and writes its output once.
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"

namespace conveyor::cuda {
namespace {

constexpr int kThreads = 256;

unsigned grid_for(std::int64_t n, int per_block) {
  const std::int64_t blocks = (n + per_block - 1) / per_block;
  // A grid-stride loop covers the rest; 65535 * 8 blocks fill any current GPU.
  return static_cast<unsigned>(blocks < 65535 * 8 ? (blocks > 0 ? blocks : 1) : 65535 * 8);
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
    const float v = in[i];
    // NaN stays NaN (fmaxf would turn it into the bound).
    out[i] = __float2half_rn(isnan(v) ? v : fminf(fmaxf(v, -65504.0f), 65504.0f));
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
    const float g = gate[i];
    out[i] = g / (1.0f + expf(-g)) * up[i];
  }
}

// One block per row.
__global__ void rmsnorm_kernel(float* x, const float* residual_add, const std::int64_t* rows_index,
                               std::int64_t cols, const float* weight, float eps, float* out) {
  const std::int64_t r = blockIdx.x;
  float* row = x + (rows_index != nullptr ? rows_index[r] : r) * cols;
  const float* add = residual_add != nullptr ? residual_add + r * cols : nullptr;
  double sum = 0;
  for (std::int64_t i = threadIdx.x; i < cols; i += blockDim.x) {
    float v = row[i];
    if (add != nullptr) {
      v += add[i];
      row[i] = v;
    }
    sum += static_cast<double>(v) * v;
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
  float* dst = out + r * cols;
  for (std::int64_t i = threadIdx.x; i < cols; i += blockDim.x)
    dst[i] = weight[i] * (row[i] * inv_rms);
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
  convert_to_bf16_kernel<<<grid_for(n, kThreads), kThreads, 0, stream>>>(in, out, n);
  CONVEYOR_CUDA_LAUNCHED();
}

void convert_to_f16(const float* in, __half* out, std::int64_t n, cudaStream_t stream) {
  if (n == 0) return;
  convert_to_f16_kernel<<<grid_for(n, kThreads), kThreads, 0, stream>>>(in, out, n);
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
  rmsnorm_kernel<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(x, residual_add, rows_index,
                                                                       cols, weight, eps, out);
  CONVEYOR_CUDA_LAUNCHED();
}

void swiglu(const float* gate, const float* up, std::int64_t n, float* out, cudaStream_t stream) {
  if (n == 0) return;
  swiglu_kernel<<<grid_for(n, kThreads), kThreads, 0, stream>>>(gate, up, n, out);
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
