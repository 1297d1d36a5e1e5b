#include "kernels/cpu/cpu_elementwise.h"

#include <cmath>
#include <cstring>

namespace conveyor::cpu {
namespace {

// Below this many values an op runs on the calling thread: waking the pool would cost
// more than it saves.
constexpr std::int64_t kParallelThreshold = 1 << 15;

void rmsnorm_row(float* x, const float* add, std::int64_t cols, const float* weight, float eps,
                 float* out) {
  if (add != nullptr) {
    for (std::int64_t i = 0; i < cols; ++i)
      x[i] += add[i];
  }
  // Sum of squares in double: exact enough that the result does not depend on the
  // order the reference implementation happened to use.
  double sum_squares = 0;
  for (std::int64_t i = 0; i < cols; ++i)
    sum_squares += static_cast<double>(x[i]) * x[i];
  const float variance = static_cast<float>(sum_squares / static_cast<double>(cols));
  const float inv_rms = 1.0f / std::sqrt(variance + eps);
  for (std::int64_t i = 0; i < cols; ++i)
    out[i] = weight[i] * (x[i] * inv_rms);
}

}  // namespace

void rmsnorm_f32(ThreadPool& pool, float* x, const float* residual_add, std::int64_t rows,
                 std::int64_t cols, const float* weight, float eps, float* out) {
  auto run_rows = [&](std::int64_t begin, std::int64_t end, int) {
    for (std::int64_t r = begin; r < end; ++r) {
      rmsnorm_row(x + r * cols, residual_add ? residual_add + r * cols : nullptr, cols, weight, eps,
                  out + r * cols);
    }
  };
  if (rows * cols < kParallelThreshold) {
    run_rows(0, rows, 0);
  } else {
    pool.parallel_ranges(rows, 1, run_rows);
  }
}

void swiglu_f32(ThreadPool& pool, const float* gate, const float* up, std::int64_t n, float* out) {
  auto run_range = [&](std::int64_t begin, std::int64_t end, int) {
    for (std::int64_t i = begin; i < end; ++i) {
      const float g = gate[i];
      out[i] = g / (1.0f + std::exp(-g)) * up[i];
    }
  };
  if (n < kParallelThreshold) {
    run_range(0, n, 0);
  } else {
    pool.parallel_ranges(n, 64, run_range);
  }
}

void gather_rows_f32(const float* table, std::int64_t cols, std::span<const std::int64_t> rows,
                     float* out) {
  const auto row_bytes = static_cast<std::size_t>(cols) * sizeof(float);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    std::memcpy(out + static_cast<std::int64_t>(i) * cols, table + rows[i] * cols, row_bytes);
  }
}

}  // namespace conveyor::cpu
