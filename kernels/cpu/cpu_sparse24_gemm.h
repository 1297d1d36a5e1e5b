// y = x W^T against a 2:4 sparse weight kept in its compressed panels
// (cpu_sparse24_pack.h): the kept half of the values, widened to f32, and their
// positions. Only the kept products are computed, k / 2 multiply-adds per output
// instead of k: for each group of 4 k values the kernel permutes x by each lane's
// positions (one vector permute per kept value and row of x) and multiplies the result
// by the kept weights. Decode, bound by reading the weights, reads 9/16 of gemm_f32's
// bytes. With many rows the permutes (on another execution port) cost about what the
// saved multiply-adds did: on an AVX-512 machine the kernel kept pace with gemm_f32 up
// to 256 rows, while expanding panels into gemm_f32's layout first (as the quantised
// GEMM does for prefill) was slower at every size, so there is one path.
//
// What is guaranteed: for finite x, every output equals gemm_f32's on the dequantised
// weight, and has the same bits unless both are zeros. Each output is accumulated over
// k in order 0..k-1 by the same multiply-add as gemm_f32; the decode path only leaves
// out the products with the pruned zeros, and adding a zero product x * 0 (±0 for a
// finite x) to an f32 sum changes nothing but the sign of a zero sum. (An infinite or
// NaN x would make gemm_f32's x * 0 a NaN that the skipped product never produces.)
#pragma once

#include <cstdint>

#include "kernels/cpu/cpu_gemm.h"
#include "kernels/cpu/cpu_isa.h"
#include "kernels/cpu/thread_pool.h"

namespace conveyor::cpu {

struct Sparse24GemmProblem : GemmOperands {
  const std::uint8_t* packed = nullptr;  // W [n, k] in 2:4 panels
};

// Splits the panels (n) over the pool.
void gemm_s24(ThreadPool& pool, CpuIsa isa, const Sparse24GemmProblem& problem);

}  // namespace conveyor::cpu
