// y = x W^T against a weight kept in quantised panels (cpu_quant_pack.h): decode, bound
// by reading the weights, streams 4- or 8-bit quants instead of f32.
//
// Results are bit-identical to gemm_f32() on the dequantised weight. The kernels build
// exactly the f32 values dequantize_row() gives and feed them to the same multiply-add,
// each y element accumulated over k in order 0..k-1; only where the values come from
// differs:
//  - few rows of x (decode): the quants of a k step are widened to f32 in registers
//    and used at once, never written anywhere;
//  - many rows (prefill): a few panels at a time are dequantised into a per-thread f32
//    tile in gemm_f32's panel layout and handed to its kernel, so the dequantising is
//    paid once per panel rather than once per row tile.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/cpu/cpu_gemm.h"
#include "kernels/cpu/cpu_isa.h"
#include "kernels/cpu/cpu_quant_pack.h"
#include "kernels/cpu/thread_pool.h"

namespace conveyor::cpu {

struct QuantGemmProblem : GemmOperands {
  const std::uint8_t* packed = nullptr;  // W [n, k] in quantised panels
  QuantFormat format = QuantFormat::kNibble;
};

// Splits the panels (n) over the pool. `scratch` holds one f32 tile per pool thread
// (grown on demand) for the many-rows path.
void gemm_quant(ThreadPool& pool, CpuIsa isa, const QuantGemmProblem& problem,
                std::vector<std::vector<float>>& scratch);

}  // namespace conveyor::cpu
