// What the GEMM kernels' tiles share (f32, quantised, 2:4 sparse): the store step, R
// rows of C * 16 accumulated outputs, clipped at n, with the optional bias and residual
// add (one definition, so that every path rounds the same way); the dispatch of a
// partial tile at the edges to the instantiation of its size; and how a product's panels
// are shared out over the pool.
#pragma once

#include <algorithm>
#include <cstdint>

#include "kernels/cpu/cpu_gemm.h"
#include "kernels/cpu/cpu_vector.h"
#include "kernels/cpu/thread_pool.h"

namespace conveyor::cpu {

template <int L, int R, int C>
[[gnu::always_inline]] inline void store_tile(const GemmOperands& p, std::int64_t row,
                                              std::int64_t panel,
                                              const Vec<L> (&acc)[R][C * kPanelWidth / L]) {
  constexpr int V = static_cast<int>(kPanelWidth) / L;
  const std::int64_t col0 = panel * kPanelWidth;
  const std::int64_t cols = std::min<std::int64_t>(C * kPanelWidth, p.n - col0);
  for (int r = 0; r < R; ++r) {
    float out[C * kPanelWidth];
    for (int j = 0; j < C * V; ++j) {
      *vec_at<L>(out + j * L) = acc[r][j];
    }
    float* y = p.y + (row + r) * p.n + col0;
    for (std::int64_t c = 0; c < cols; ++c) {
      float sum = out[c];
      if (p.bias != nullptr) sum += p.bias[col0 + c];
      y[c] = p.accumulate ? y[c] + sum : sum;
    }
  }
}

// Calls `tile.template operator()<rows, panels>()` for a tile of `rows` <= R rows of x
// and `panels` <= C panels of W: each size is its own instantiation, so that a kernel's
// loops over rows and panels unroll. `tile` is a generic lambda such as
// `[&]<int TR, int TC>() __attribute__((always_inline)) { my_tile<L, TR, TC>(...); }`:
// it must be inlined, since a kernel built for AVX2 or AVX-512 (a target attribute on
// its entry point) would otherwise call a lambda compiled for the baseline ISA.
template <int R, int C, typename Tile>
[[gnu::always_inline]] inline void run_tile(std::int64_t rows, std::int64_t panels,
                                            const Tile& tile) {
  if constexpr (R > 1) {
    if (rows != R) return run_tile<R - 1, C>(rows, panels, tile);
  }
  if constexpr (C > 1) {
    if (panels != C) return run_tile<R, C - 1>(rows, panels, tile);
  }
  tile.template operator()<R, C>();
}

// Whether an m x n x k product is too small to be worth waking the pool for.
inline bool small_product(std::int64_t m, std::int64_t n, std::int64_t k) {
  return m * n * k < (1 << 15);
}

// fn(begin, end, thread) over the panels [0, ceil(n / kPanelWidth)) of an m x n x k
// product: on this thread (as thread 0) for a small one, else over the pool in ranges of
// whole 4-panel tiles (the widest), four ranges a thread so that a delayed thread holds
// up less.
template <typename Fn>
void for_panel_ranges(ThreadPool& pool, std::int64_t m, std::int64_t n, std::int64_t k, Fn&& fn) {
  const std::int64_t panels = (n + kPanelWidth - 1) / kPanelWidth;
  if (small_product(m, n, k)) {
    fn(std::int64_t{0}, panels, 0);
    return;
  }
  constexpr int kChunksPerThread = 4;
  pool.parallel_ranges(panels, 4, fn, kChunksPerThread);
}

}  // namespace conveyor::cpu
