// The FP8 GEMM's own kernels (fp8_ops.h). Both must round exactly as their CPU twins do,
// so every division, product and sum is written with an explicitly rounded intrinsic:
// nvcc would otherwise be free to fuse a product and a sum into one FMA.
#include <cuda_fp8.h>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/e4m3.h"
#include "kernels/cuda/fp8_ops.h"
#include "kernels/cuda/silu.h"

namespace conveyor::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;

// One block per row: the row's max|x| reduced in the block, then every value coded.
// `value(r, i)` gives element i of row r (read twice: for the max, then for the code).
template <typename Value>
__global__ void quantize_rows_e4m3_kernel(Value value, std::int64_t k, std::uint8_t* codes,
                                          float* scales) {
  const std::int64_t r = blockIdx.x;
  // fmaxf returns the other operand for a NaN, as std::max(amax, NaN) keeps amax on the
  // host: a NaN never becomes the scale. The maximum is exact in any order.
  float amax = 0.0f;
  for (std::int64_t i = threadIdx.x; i < k; i += blockDim.x)
    amax = fmaxf(amax, fabsf(value(r, i)));
  for (int offset = 16; offset > 0; offset /= 2)
    amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, offset));
  __shared__ float partial[kWarps];
  __shared__ float row_scale;
  if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = amax;
  __syncthreads();
  if (threadIdx.x == 0) {
    float total = 0.0f;
    for (int w = 0; w < kWarps; ++w)
      total = fmaxf(total, partial[w]);
    const float s = e4m3_scale(total);
    row_scale = s;
    scales[r] = s;
  }
  __syncthreads();
  const float s = row_scale;
  std::uint8_t* out = codes + r * k;
  for (std::int64_t i = threadIdx.x; i < k; i += blockDim.x)
    out[i] = encode_e4m3(value(r, i), s);
}

struct RowsF32 {
  const float* x;
  std::int64_t k;
  __device__ float operator()(std::int64_t r, std::int64_t i) const { return x[r * k + i]; }
};

// silu(gate) * up of bf16 rows, in f32.
struct RowsSwiglu {
  const __nv_bfloat16* gate;
  const __nv_bfloat16* up;
  std::int64_t k;
  __device__ float operator()(std::int64_t r, std::int64_t i) const {
    return silu_times(__bfloat162float(gate[r * k + i]), __bfloat162float(up[r * k + i]));
  }
};

// Rows stride over grid y, columns over grid x.
__global__ void fp8_scale_epilogue_kernel(const float* sums, const float* x_scales,
                                          const float* w_scales, const float* bias,
                                          std::int64_t rows, std::int64_t cols, bool accumulate,
                                          float* y) {
  const std::int64_t col_stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = blockIdx.y; i < rows; i += gridDim.y) {
    const float sx = x_scales[i];
    const float* sum_row = sums + i * cols;
    float* y_row = y + i * cols;
    for (std::int64_t j = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
         j < cols; j += col_stride) {
      float v = __fmul_rn(sum_row[j], __fmul_rn(sx, w_scales[j]));
      if (bias != nullptr) v = __fadd_rn(v, bias[j]);
      y_row[j] = accumulate ? __fadd_rn(y_row[j], v) : v;
    }
  }
}

}  // namespace

void quantize_rows_e4m3(const float* x, std::int64_t rows, std::int64_t k, std::uint8_t* codes,
                        float* scales, cudaStream_t stream) {
  if (rows <= 0) return;
  quantize_rows_e4m3_kernel<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(RowsF32{x, k}, k,
                                                                                  codes, scales);
  CONVEYOR_CUDA_LAUNCHED();
}

void quantize_swiglu_rows_e4m3(const __nv_bfloat16* gate, const __nv_bfloat16* up,
                               std::int64_t rows, std::int64_t k, std::uint8_t* codes,
                               float* scales, cudaStream_t stream) {
  if (rows <= 0) return;
  quantize_rows_e4m3_kernel<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(
      RowsSwiglu{gate, up, k}, k, codes, scales);
  CONVEYOR_CUDA_LAUNCHED();
}

void fp8_scale_epilogue(const float* sums, const float* x_scales, const float* w_scales,
                        const float* bias, std::int64_t rows, std::int64_t cols, bool accumulate,
                        float* y, cudaStream_t stream) {
  if (rows <= 0 || cols <= 0) return;
  const std::int64_t col_blocks = (cols + kThreads - 1) / kThreads;
  // Enough blocks to fill any current GPU; the loops cover the rest.
  const dim3 grid(static_cast<unsigned>(col_blocks < 1024 ? col_blocks : 1024),
                  static_cast<unsigned>(rows < 65535 ? rows : 65535));
  fp8_scale_epilogue_kernel<<<grid, kThreads, 0, stream>>>(sums, x_scales, w_scales, bias, rows,
                                                           cols, accumulate, y);
  CONVEYOR_CUDA_LAUNCHED();
}

}  // namespace conveyor::cuda
