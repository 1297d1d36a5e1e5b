// Pruning masks for W f32 [n, k]: which weights to keep (1) and which to zero (0).
// A weight's score is |w_ij|, or |w_ij| * ||x_j|| with per-input-channel activation
// norms (channel_l2_norms(): Wanda, Sun et al. 2023), so that a small weight on a
// loud channel outlives a larger one on a silent channel. Counts are exact and ties
// deterministic: among equal scores the weight that comes first in row-major order is
// kept, so the same weights give the same mask on every machine.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace conveyor::quant {

enum class PruneScope {
  kMatrix,  // the lowest scores of the whole matrix go
  kRow,     // each output row loses the same share (Wanda's comparison group)
};

struct MagnitudePruneOptions {
  double sparsity = 0;  // share of weights zeroed, in [0, 1]
  PruneScope scope = PruneScope::kMatrix;
  std::span<const float> input_norms;  // f32 [k], >= 0; empty: score by |w| alone
};

// Zeroes exactly round(sparsity * count) weights of each group (the matrix, or each
// row), those of lowest score. Throws Error(kInvalidArgument) for a sparsity outside
// [0, 1], sizes that disagree, or non-finite or negative values where they may not be.
std::vector<std::uint8_t> magnitude_prune_mask(std::span<const float> w, std::int64_t n,
                                               std::int64_t k,
                                               const MagnitudePruneOptions& options);

// 2:4 structured sparsity (what sparse tensor cores run): in every group of 4
// consecutive k values of a row, the 2 of highest score are kept. k must be a multiple
// of 4. Scores and checks as above.
std::vector<std::uint8_t> two_four_prune_mask(std::span<const float> w, std::int64_t n,
                                              std::int64_t k,
                                              std::span<const float> input_norms = {});

// w[i] = 0 where mask[i] == 0; the sizes must agree.
void apply_prune_mask(std::span<float> w, std::span<const std::uint8_t> mask);

}  // namespace conveyor::quant
