// Per-input-channel statistics of calibration activations X f32 [m, k] (the inputs of
// a linear layer on calibration tokens): what activation-aware scaling (awq_search.h)
// and pruning (prune_mask.h) weigh the weights' columns by.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace conveyor::quant {

// mean_i |x_ij| for each channel j: f32 [k]. Throws Error(kInvalidArgument) for a size
// that is not m * k or a non-finite value.
std::vector<float> channel_mean_abs(std::span<const float> x, std::int64_t m, std::int64_t k);

// sqrt(sum_i x_ij^2) for each channel j (Wanda's ||X_j||_2): f32 [k]. The same checks.
std::vector<float> channel_l2_norms(std::span<const float> x, std::int64_t m, std::int64_t k);

}  // namespace conveyor::quant
