// Activation-aware scaling for group-wise int4 (AWQ, Lin et al. 2023): a few input
// channels carry much larger activations than the rest, and the weights that meet them
// matter most. Multiplying W's columns by s > 1 on those channels (and the input by
// 1 / s) leaves X W^T unchanged but gives those weights more of the quantisation grid.
// The search tries s = mean|x|^alpha for alpha on a grid and keeps the alpha whose
// quantised layer reproduces the layer's outputs on calibration activations best.
//
// Applying the result is the caller's job: multiply the columns of every weight that
// reads this input by s (scale_weight_columns) before quantising them, and fold 1 / s
// into whatever produces the input so that the runtime input is X diag(1 / s): for the
// q/k/v projections (and gate/up) that is the preceding RMSNorm's weight
// (fold_scales_into_norm). Weights that share one input (q, k and v; gate and up) must
// share one s: pass them together.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "common/dtype.h"

namespace conveyor::quant {

// One weight that reads the calibrated input: f32 [rows, k], row-major.
struct AwqWeight {
  std::span<const float> values;
  std::int64_t rows = 0;
};

struct AwqOptions {
  DType type = DType::kQ4_G128;  // the int4 format to quantise to: kQ4_G128 or kQ4_1
  int grid = 20;                 // alpha in {0, 1/grid, 2/grid, ..., 1}
  // mean |x| per input channel, f32 [k] (channel_mean_abs()), when the caller has it
  // from more tokens than it passes as X; empty: computed from X.
  std::span<const float> mean_abs;
};

struct AwqResult {
  float alpha = 0;
  std::vector<float> scales;  // f32 [k]: s at alpha (all ones at alpha = 0)
  // Mean squared error of the outputs, over X's rows and every weight's rows:
  // mean (X W^T - (X diag(1/s)) Q(W diag(s))^T)^2, Q the int4 quantise-dequantise.
  double error = 0;
  double plain_error = 0;      // the same at alpha = 0: plain group-wise int4
  std::vector<double> errors;  // at each alpha of the grid, in order
};

// s = max(mean|x|^alpha, 1e-4), normalised by sqrt(max(s) * min(s)) (as AWQ's
// reference implementation does), for each alpha of the grid; returns the alpha with
// the least error, the smallest such alpha on a tie. X is f32 [m, k] (a few hundred
// tokens suffice; the cost is grid x m x k x total rows multiply-adds). Throws
// Error(kInvalidArgument) for sizes that disagree, a k that is not a whole number of
// the type's groups, a grid < 1, or non-finite values.
AwqResult search_awq_scales(std::span<const AwqWeight> weights, std::span<const float> x,
                            std::int64_t m, std::int64_t k, const AwqOptions& options = {});

// The per-channel scales for one alpha, from mean |x| (as search_awq_scales makes them).
std::vector<float> awq_scales(std::span<const float> mean_abs, float alpha);

// w[i][j] *= s[j] for W f32 [n, k].
void scale_weight_columns(std::span<float> w, std::int64_t n, std::int64_t k,
                          std::span<const float> scales);

// norm_weight[j] /= s[j]: the RMSNorm before the scaled weights then produces X diag(1/s).
void fold_scales_into_norm(std::span<float> norm_weight, std::span<const float> scales);

}  // namespace conveyor::quant
