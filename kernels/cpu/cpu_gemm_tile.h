// What the GEMM kernels' tiles share (f32, quantised, 2:4 sparse): the store step, R
// rows of C * 16 accumulated outputs, clipped at n, with the optional bias and residual
// add (one definition, so that every path rounds the same way); the dispatch of a
// partial tile at the edges to the instantiation of its size; and how a product's panels
// are shared out over the pool.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

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

// Every tile of rows [0, m) by panels [begin, end), R rows by C panels at most (smaller
// at the edges): tile.template operator()<TR, TC>(row, panel) for each, `tile` a generic
// lambda `[&]<int TR, int TC>(std::int64_t row, std::int64_t panel)
// __attribute__((always_inline)) {...}`, inlined for the reason run_tile gives.
template <int R, int C, typename Tile>
[[gnu::always_inline]] inline void for_each_tile(std::int64_t m, std::int64_t begin,
                                                 std::int64_t end, const Tile& tile) {
  for (std::int64_t panel = begin; panel < end; panel += C) {
    const std::int64_t panels = std::min<std::int64_t>(C, end - panel);
    for (std::int64_t row = 0; row < m; row += R) {
      run_tile<R, C>(
          std::min<std::int64_t>(R, m - row),
          panels, [&]<int TR, int TC>() __attribute__((always_inline)) {
            tile.template operator()<TR, TC>(row, panel);
          });
    }
  }
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

// Panels [begin, end) of y = x W^T for all rows, for a W kept in another form: a tile of
// panels at a time widened by decode(first, count, tile) into f32 panels, then
// gemm_f32's kernel over them. The tile is a multiple of 4 panels (gemm_f32's widest
// tile): 8 where a 1 MiB budget (well inside a core's L2, where the kernel reads it once
// per block of rows) holds them, never fewer than 4, which for long k (14336
// in 8B models) costs a tile of a few MB rather than one-panel tiles.
template <typename Decode>
void gemm_decoded_panels(CpuIsa isa, const GemmOperands& operands, std::int64_t begin,
                         std::int64_t end, std::vector<float>& tile, Decode&& decode) {
  constexpr std::int64_t kTileBudgetFloats = (std::int64_t{1} << 20) / sizeof(float);
  const std::int64_t panel_floats = operands.k * kPanelWidth;
  const std::int64_t tile_panels =
      std::clamp<std::int64_t>(kTileBudgetFloats / panel_floats / 4 * 4, 4, 8);
  tile.resize(static_cast<std::size_t>(tile_panels * panel_floats));
  GemmProblem f32{operands, tile.data(), 0};
  for (std::int64_t first = begin; first < end; first += tile_panels) {
    const std::int64_t count = std::min(tile_panels, end - first);
    decode(first, count, tile.data());
    f32.packed_first_panel = first;
    gemm_f32_panels(isa, f32, first, first + count);
  }
}

}  // namespace conveyor::cpu
