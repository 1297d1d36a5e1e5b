// Weight-only quantised GEMMs (W8A16, W4A16) that read the weights in their stored,
// compressed form: y = x W^T with x in f16 and W as Conveyor's kQ8_R (int8 per value,
// one f16 scale per row) or kQ4_G128 (groups of 128: f16 d and m, 64 bytes of nibbles;
// common/dtype.h). Each block copies tiles of x and of the compressed W into shared
// memory (cp.async, four stages by default: the next tiles' copies run while this one
// is multiplied), widens each W value to f16 as it builds the tensor-core fragments (q8:
// the integer itself, exact, with the row's scale applied to the f32 sum; q4: q * d + m
// in one f16 fma) and multiplies with mma.m16n8k16 (f32 accumulation). Fewer weight
// bytes per step is the point: at decode batch sizes the product is bound by reading
// W. For prefill-sized m the backend instead dequantises W a slab of rows at a time and
// calls cuBLASLt (dequantize_rows_f16).
//
// The CPU backend's GEMM from the same compressed form is each kernel's twin
// (tests/gpu/cuda_backend_test.cpp).
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace conveyor::cuda {

enum class QuantLayout : std::uint8_t {
  kQ8Rows,    // kQ8_R: int8 [n, k] row-major, f16 scale per row in `row_scales`
  kQ4Groups,  // kQ4_G128: [n, k / 128] blocks of 68 bytes
};

struct QuantMatrix {
  QuantLayout layout = QuantLayout::kQ8Rows;
  const std::uint8_t* data = nullptr;
  const __half* row_scales = nullptr;  // kQ8Rows only
  std::int64_t rows = 0;               // n
  std::int64_t cols = 0;               // k
};

// Whether the kernels take a matrix of this layout and width: k a multiple of 16 for
// kQ8Rows (whole 16-byte loads), of 128 for kQ4Groups (whole groups).
bool quant_gemm_supports(QuantLayout layout, std::int64_t cols);

// Device scratch quant_gemm needs for m rows: the split-K partial sums.
std::size_t quant_gemm_scratch_bytes(std::int64_t m, const QuantMatrix& w, int multiprocessors);

// y (f32 [m, n]) = x (f16 [m, k]) W^T, or y += x W^T with `accumulate`. K is split
// over blocks when the output tiles alone would leave multiprocessors idle; the
// partial sums then go through `scratch` and are added in a fixed order (the result
// does not depend on scheduling).
void quant_gemm(const __half* x, std::int64_t m, const QuantMatrix& w, float* y, bool accumulate,
                void* scratch, int multiprocessors, cudaStream_t stream);

// Rows [first, first + count) of W dequantised to f16 [count, k] (q8: q * d rounded
// once; q4: q * d + m in f32, rounded once), for cuBLASLt at large m.
void dequantize_rows_f16(const QuantMatrix& w, std::int64_t first, std::int64_t count, __half* out,
                         cudaStream_t stream);

// out[t] = row tokens[t] of the table, dequantised to f32 exactly as the CPU does
// (q8: q * d; q4: q * d + m), for embeddings stored compressed.
void embed_quant(const QuantMatrix& table, const std::int32_t* tokens, std::int64_t num_tokens,
                 float* out, cudaStream_t stream);

// The same for an FP8 E4M3 table with one f32 scale per row (kF8_R): e4m3(code) * s.
void embed_fp8_rows(const std::uint8_t* codes, const float* row_scales, std::int64_t cols,
                    const std::int32_t* tokens, std::int64_t num_tokens, float* out,
                    cudaStream_t stream);

}  // namespace conveyor::cuda
