// The kernels of the FP8 (E4M3) W8A8 GEMM that run beside cuBLASLt (kernels/cuda/fp8_gemm.h):
// the dynamic per-row quantisation of the activations and, for when cuBLASLt does not take
// per-row and per-column scales itself, the epilogue that applies them. Their CPU twins are
// quant::quantize_rows_e4m3 and the last step of cpu::gemm_fp8. Every launcher queues work
// on `stream` and returns; none synchronises. Pointers are device memory.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace conveyor::cuda {

// x f32 [rows, k] to E4M3 codes [rows, k] (one byte each) and one f32 scale per row, bit
// for bit as quant::quantize_rows_e4m3: s = max|x| / 448 (1 for a row of zeros), code =
// e4m3(x / s) rounded to nearest even and saturating at +-448; a NaN stays NaN, with its
// sign. An infinite value makes its row's scale infinite and its own code NaN (whose sign
// bit is the device's, not necessarily the host's). One block per row.
void quantize_rows_e4m3(const float* x, std::int64_t rows, std::int64_t k, std::uint8_t* codes,
                        float* scales, cudaStream_t stream);

// The same of silu(gate) * up (in f32) for bf16 gate and up [rows, k]: the feed-forward
// block's intermediate quantised for the down product without an f32 copy of it.
void quantize_swiglu_rows_e4m3(const __nv_bfloat16* gate, const __nv_bfloat16* up,
                               std::int64_t rows, std::int64_t k, std::uint8_t* codes,
                               float* scales, cudaStream_t stream);

// y[i][j] = (accumulate ? y[i][j] : 0) + sums[i][j] * (x_scales[i] * w_scales[j]) (+ bias[j]),
// rounded step by step in that order as cpu::gemm_fp8 rounds it (no fused multiply-adds).
// sums and y are f32 [rows, cols], x_scales [rows], w_scales and bias [cols]; bias may be
// null.
void fp8_scale_epilogue(const float* sums, const float* x_scales, const float* w_scales,
                        const float* bias, std::int64_t rows, std::int64_t cols, bool accumulate,
                        float* y, cudaStream_t stream);

}  // namespace conveyor::cuda
