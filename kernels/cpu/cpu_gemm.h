// f32 matrix multiply against a weight given as [n, k] (PyTorch's linear layout):
// y = x W^T, optionally + bias and/or accumulated into y.
//
// Weights are repacked once, at upload, into panels of kPanelWidth output rows stored
// k-major: panel p holds W[p*16 .. p*16+15][kk] at packed[(p*k + kk)*16 + (row - p*16)],
// zero-padded past n. The kernel then broadcasts one x value and multiplies it by a
// contiguous 16-wide slice of the panel: no horizontal sums, unit-stride weight
// streaming (what decode, bound by reading the weights, needs), and register tiles of
// several x rows for prefill.
//
// Every y element is accumulated over k in order 0..k-1 by the same multiply-add,
// whatever m, the tile shape, the thread split or the vector width: results do not
// depend on batch composition or thread count, bit for bit.
#pragma once

#include <cstdint>

#include "kernels/cpu/cpu_isa.h"
#include "kernels/cpu/thread_pool.h"

namespace conveyor::cpu {

constexpr std::int64_t kPanelWidth = 16;

// Floats needed to hold W [n, k] in panel layout.
inline std::int64_t packed_weight_floats(std::int64_t n, std::int64_t k) {
  return (n + kPanelWidth - 1) / kPanelWidth * kPanelWidth * k;
}

// Writes rows [row_begin, row_end) of W (f32 [row_end - row_begin, k], row-major) into
// their places in a packed weight of k columns. Padding rows must already be zero.
void pack_weight_rows(const float* rows, std::int64_t row_begin, std::int64_t row_end,
                      std::int64_t k, float* packed);

// Reads row `row` of a packed weight of k columns into out (f32 [k]).
void unpack_weight_row(const float* packed, std::int64_t row, std::int64_t k, float* out);

// What every GEMM variant computes: y = x W^T (+ bias), or y += that; the variants
// differ only in how W is stored.
struct GemmOperands {
  const float* x = nullptr;     // f32 [m, k]
  float* y = nullptr;           // f32 [m, n]
  const float* bias = nullptr;  // f32 [n] or null
  std::int64_t m = 0;
  std::int64_t n = 0;
  std::int64_t k = 0;
  bool accumulate = false;  // y += x W^T
};

struct GemmProblem : GemmOperands {
  const float* packed = nullptr;        // W [n, k] in panel layout, from packed_first_panel on
  std::int64_t packed_first_panel = 0;  // the panel `packed` points at (a tile of W)
};

// Splits the panels (n) over the pool; each thread streams its own slice of W.
void gemm_f32(ThreadPool& pool, CpuIsa isa, const GemmProblem& problem);

// Panels [panel_begin, panel_end) of y, all rows, on the calling thread: the kernel
// gemm_f32 runs, for callers that supply W a few panels at a time.
void gemm_f32_panels(CpuIsa isa, const GemmProblem& problem, std::int64_t panel_begin,
                     std::int64_t panel_end);

}  // namespace conveyor::cpu
