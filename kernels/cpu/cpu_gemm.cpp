#include "kernels/cpu/cpu_gemm.h"

#include <algorithm>

#include "kernels/cpu/cpu_gemm_tile.h"
#include "kernels/cpu/cpu_vector.h"

namespace conveyor::cpu {
namespace {

// Rows of x per block: 64 rows of the widest k (a few thousand) stay in L2 while a
// group of panels is applied to them.
constexpr std::int64_t kRowBlock = 64;

// Several weight slices per thread, so that a thread delayed by the OS does not hold
// up the whole op.

// One tile: R rows of x against C consecutive panels (C * 16 outputs per row), with L
// lanes per vector, so V = 16 / L vectors per panel row.
template <int L, int R, int C>
[[gnu::always_inline]] inline void gemm_tile(const GemmProblem& p, std::int64_t row,
                                             std::int64_t panel) {
  constexpr int V = static_cast<int>(kPanelWidth) / L;
  const std::int64_t k = p.k;
  const float* x = p.x + row * k;
  const float* w = p.packed + (panel - p.packed_first_panel) * k * kPanelWidth;
  Vec<L> acc[R][C * V] = {};
  for (std::int64_t kk = 0; kk < k; ++kk) {
    Vec<L> wv[C * V];
    for (int c = 0; c < C; ++c) {
      for (int v = 0; v < V; ++v) {
        wv[c * V + v] = *vec_at<L>(w + (c * k + kk) * kPanelWidth + v * L);
      }
    }
    for (int r = 0; r < R; ++r) {
      const float xs = x[r * k + kk];
      for (int j = 0; j < C * V; ++j)
        acc[r][j] += xs * wv[j];
    }
  }
  store_tile<L, R, C>(p, row, panel, acc);
}

// All rows of y for panels [panel_begin, panel_end).
template <int L, int R, int C>
[[gnu::always_inline]] inline void gemm_panels(const GemmProblem& p, std::int64_t panel_begin,
                                               std::int64_t panel_end) {
  for (std::int64_t row0 = 0; row0 < p.m; row0 += kRowBlock) {
    const std::int64_t row_end = std::min(p.m, row0 + kRowBlock);
    for (std::int64_t panel = panel_begin; panel < panel_end; panel += C) {
      const std::int64_t panels = std::min<std::int64_t>(C, panel_end - panel);
      for (std::int64_t row = row0; row < row_end; row += R) {
        run_tile<R, C>(
            std::min<std::int64_t>(R, row_end - row),
            panels, [&]<int TR, int TC>() __attribute__((always_inline)) {
              gemm_tile<L, TR, TC>(p, row, panel);
            });
      }
    }
  }
}

// Tile shapes fill the register file with accumulators, leaving room for one panel
// row and the broadcast x value: 32 registers with AVX-512, 16 with AVX2 and SSE.
void gemm_panels_generic(const GemmProblem& p, std::int64_t b, std::int64_t e) {
  gemm_panels<4, 2, 1>(p, b, e);
}

#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("avx2,fma"))) void gemm_panels_avx2(const GemmProblem& p, std::int64_t b,
                                                          std::int64_t e) {
  gemm_panels<8, 6, 1>(p, b, e);
}

__attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma"))) void gemm_panels_avx512(
    const GemmProblem& p, std::int64_t b, std::int64_t e) {
  gemm_panels<16, 6, 4>(p, b, e);
}
#endif

using GemmPanelsFn = void (*)(const GemmProblem&, std::int64_t, std::int64_t);

GemmPanelsFn select(CpuIsa isa) {
#if defined(__x86_64__) || defined(__i386__)
  if (isa == CpuIsa::kAvx512) return gemm_panels_avx512;
  if (isa == CpuIsa::kAvx2) return gemm_panels_avx2;
#endif
  (void)isa;
  return gemm_panels_generic;
}

}  // namespace

void pack_weight_rows(const float* rows, std::int64_t row_begin, std::int64_t row_end,
                      std::int64_t k, float* packed) {
  for (std::int64_t r = row_begin; r < row_end; ++r) {
    const float* src = rows + (r - row_begin) * k;
    float* dst = packed + (r / kPanelWidth) * k * kPanelWidth + r % kPanelWidth;
    for (std::int64_t kk = 0; kk < k; ++kk)
      dst[kk * kPanelWidth] = src[kk];
  }
}

void unpack_weight_row(const float* packed, std::int64_t row, std::int64_t k, float* out) {
  const float* src = packed + (row / kPanelWidth) * k * kPanelWidth + row % kPanelWidth;
  for (std::int64_t kk = 0; kk < k; ++kk)
    out[kk] = src[kk * kPanelWidth];
}

void gemm_f32_panels(CpuIsa isa, const GemmProblem& problem, std::int64_t panel_begin,
                     std::int64_t panel_end) {
  if (problem.m <= 0 || panel_begin >= panel_end) return;
  select(isa)(problem, panel_begin, panel_end);
}

void gemm_f32(ThreadPool& pool, CpuIsa isa, const GemmProblem& problem) {
  if (problem.m <= 0 || problem.n <= 0) return;
  const GemmPanelsFn fn = select(isa);
  for_panel_ranges(pool, problem.m, problem.n, problem.k,
                   [&](std::int64_t begin, std::int64_t end, int) { fn(problem, begin, end); });
}

}  // namespace conveyor::cpu
