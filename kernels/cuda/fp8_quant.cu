// The FP8 GEMM's own kernels (fp8_ops.h). Both must round exactly as their CPU twins do,
// so every division, product and sum is written with an explicitly rounded intrinsic:
// nvcc would otherwise be free to fuse a product and a sum into one FMA.
#include <cuda_fp8.h>

#include <cstdint>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/e4m3.h"
#include "kernels/cuda/fp8_ops.h"
#include "kernels/cuda/silu.h"

namespace conveyor::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;

// One block per row: the row's max|x| reduced in the block, then every value coded.
// `value.load(r, g, v)` gives elements [g kVec, (g + 1) kVec) of row r (read twice: for the
// max, then for the codes); with kVec 4, four codes are stored as one word.
template <int kVec, typename Value>
__global__ void quantize_rows_e4m3_kernel(Value value, std::int64_t k, std::uint8_t* codes,
                                          float* scales) {
  const std::int64_t r = blockIdx.x;
  const std::int64_t groups = k / kVec;
  // fmaxf returns the other operand for a NaN, as std::max(amax, NaN) keeps amax on the
  // host: a NaN never becomes the scale. The maximum is exact in any order.
  float amax = 0.0f;
  for (std::int64_t g = threadIdx.x; g < groups; g += blockDim.x) {
    float v[kVec];
    value.load(r, g, v);
#pragma unroll
    for (int e = 0; e < kVec; ++e)
      amax = fmaxf(amax, fabsf(v[e]));
  }
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
  for (std::int64_t g = threadIdx.x; g < groups; g += blockDim.x) {
    float v[kVec];
    value.load(r, g, v);
    if constexpr (kVec == 1) {
      out[g] = encode_e4m3(v[0], s);
    } else {
      std::uint32_t word = 0;
#pragma unroll
      for (int e = 0; e < kVec; ++e)
        word |= static_cast<std::uint32_t>(encode_e4m3(v[e], s)) << (8 * e);
      reinterpret_cast<std::uint32_t*>(out)[g] = word;
    }
  }
}

template <int kVec>
struct RowsF32 {
  const float* x;
  std::int64_t k;
  __device__ void load(std::int64_t r, std::int64_t g, float (&v)[kVec]) const {
    const float* p = x + r * k + g * kVec;
    if constexpr (kVec == 4) {
      const float4 f = *reinterpret_cast<const float4*>(p);
      v[0] = f.x, v[1] = f.y, v[2] = f.z, v[3] = f.w;
    } else {
      v[0] = *p;
    }
  }
};

// silu(gate) * up of bf16 rows, in f32.
template <int kVec>
struct RowsSwiglu {
  const __nv_bfloat16* gate;
  const __nv_bfloat16* up;
  std::int64_t k;
  __device__ void load(std::int64_t r, std::int64_t g, float (&v)[kVec]) const {
    const std::int64_t at = r * k + g * kVec;
    if constexpr (kVec == 4) {
      const uint2 gw = *reinterpret_cast<const uint2*>(gate + at);
      const uint2 uw = *reinterpret_cast<const uint2*>(up + at);
      const unsigned gs[2] = {gw.x, gw.y};
      const unsigned us[2] = {uw.x, uw.y};
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const float2 gf = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&gs[h]));
        const float2 uf = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&us[h]));
        v[2 * h] = silu_times(gf.x, uf.x);
        v[2 * h + 1] = silu_times(gf.y, uf.y);
      }
    } else {
      v[0] = silu_times(__bfloat162float(gate[at]), __bfloat162float(up[at]));
    }
  }
};

bool aligned_to(const void* p, std::uintptr_t bytes) {
  return reinterpret_cast<std::uintptr_t>(p) % bytes == 0;
}

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
  // Four values at a time where rows of x and of the codes stay aligned for it.
  if (k % 4 == 0 && aligned_to(x, 16) && aligned_to(codes, 4)) {
    quantize_rows_e4m3_kernel<4>
        <<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(RowsF32<4>{x, k}, k, codes, scales);
  } else {
    quantize_rows_e4m3_kernel<1>
        <<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(RowsF32<1>{x, k}, k, codes, scales);
  }
  CONVEYOR_CUDA_LAUNCHED();
}

void quantize_swiglu_rows_e4m3(const __nv_bfloat16* gate, const __nv_bfloat16* up,
                               std::int64_t rows, std::int64_t k, std::uint8_t* codes,
                               float* scales, cudaStream_t stream) {
  if (rows <= 0) return;
  if (k % 4 == 0 && aligned_to(gate, 8) && aligned_to(up, 8) && aligned_to(codes, 4)) {
    quantize_rows_e4m3_kernel<4><<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(
        RowsSwiglu<4>{gate, up, k}, k, codes, scales);
  } else {
    quantize_rows_e4m3_kernel<1><<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(
        RowsSwiglu<1>{gate, up, k}, k, codes, scales);
  }
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
