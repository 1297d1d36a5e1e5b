// Row-wise and elementwise CPU kernels: RMSNorm, SwiGLU, embedding gather, KV stores.
#pragma once

#include <cstdint>
#include <span>

#include "kernels/cpu/thread_pool.h"

namespace conveyor::cpu {

// With residual_add: x += residual_add first. Then out = x / rms(x) * weight per row.
// x, residual_add, out: f32 [rows, cols]; weight: f32 [cols].
void rmsnorm_f32(ThreadPool& pool, float* x, const float* residual_add, std::int64_t rows,
                 std::int64_t cols, const float* weight, float eps, float* out);

// out = silu(gate) * up over n values; out may alias gate or up.
void swiglu_f32(ThreadPool& pool, const float* gate, const float* up, std::int64_t n, float* out);

// out[i] = table[rows[i]]; table: f32 [*, cols]; out: f32 [rows.size(), cols].
// Indices must already be checked.
void gather_rows_f32(const float* table, std::int64_t cols, std::span<const std::int64_t> rows,
                     float* out);

}  // namespace conveyor::cpu
