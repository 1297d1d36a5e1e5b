// y = x W^T for a weight stored as FP8 E4M3 with one f32 scale per row (kF8_R): the W8A8
// GEMM of Hopper's FP8 tensor cores, emulated. Each row of x is quantised to E4M3 with
// its own scale at run time (quant::quantize_rows_e4m3: dynamic per-token scales), the
// decoded E4M3 values of x and W are multiplied and accumulated in f32, and each output
// is scaled once at the end:
//   y[i][j] = (sum_l e4m3(xq[i][l]) * e4m3(wq[j][l])) * (sx[i] * sw[j])  (+ bias[j]),
// or y += that. The product of two E4M3 values is exact in f32 (4 + 4 significant bits,
// exponents within f32's normal range), so only the order of the accumulation differs
// from a tensor core's; here it runs over k in order 0..k-1, as in gemm_f32, whose
// kernel does the accumulating (W's codes decoded a few panels at a time into a
// per-thread f32 tile). The weight stays at one byte per value.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/cpu/cpu_gemm.h"
#include "kernels/cpu/cpu_isa.h"
#include "kernels/cpu/thread_pool.h"

namespace conveyor::cpu {

struct Fp8GemmProblem : GemmOperands {
  const std::uint8_t* codes = nullptr;  // W E4M3 [n, k], row-major
  const float* scales = nullptr;        // W's row scales, f32 [n]
};

// Working memory of gemm_fp8, kept between calls (grown on demand).
struct Fp8GemmScratch {
  std::vector<std::uint8_t> x_codes;      // E4M3 [m, k]
  std::vector<float> x_scales;            // f32 [m]
  std::vector<float> x_values;            // decoded x codes, f32 [m, k]
  std::vector<float> sums;                // unscaled sums, f32 [m, n]
  std::vector<std::vector<float>> tiles;  // per pool thread: W panels decoded to f32
};

// Splits the panels (n) over the pool.
void gemm_fp8(ThreadPool& pool, CpuIsa isa, const Fp8GemmProblem& problem, Fp8GemmScratch& scratch);

// Row `row` of the weight as f32 [k]: e4m3(code) * scale, as dequantize_row() gives it.
void unpack_fp8_row(const std::uint8_t* codes, const float* scales, std::int64_t row,
                    std::int64_t k, float* out);

}  // namespace conveyor::cpu
