// The store step shared by the f32 and the quantised GEMM tiles: R rows of C * 16
// accumulated outputs, clipped at n, with the optional bias and residual add. One
// definition so that both paths round the same way.
#pragma once

#include <algorithm>
#include <cstdint>

#include "kernels/cpu/cpu_gemm.h"
#include "kernels/cpu/cpu_vector.h"

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

}  // namespace conveyor::cpu
