#include "common/quant/prune_mask.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include "common/quant/weight_checks.h"
#include "common/status.h"

namespace conveyor::quant {
namespace {

std::vector<float> scores(std::span<const float> w, std::int64_t n, std::int64_t k,
                          std::span<const float> input_norms, const char* what) {
  check_matrix(w, n, k, what);
  if (!input_norms.empty()) check_channel_stats(input_norms, k, what);
  std::vector<float> s(w.size());
  for (std::int64_t r = 0; r < n; ++r) {
    for (std::int64_t j = 0; j < k; ++j) {
      const auto i = static_cast<std::size_t>(r * k + j);
      s[i] = std::fabs(w[i]);
      if (!input_norms.empty()) s[i] *= input_norms[static_cast<std::size_t>(j)];
    }
  }
  return s;
}

// The order in which weights go: lowest score first; among equal scores the later
// index first, so that the earlier one is kept. A strict total order over indices.
struct PruneFirst {
  const float* score;
  bool operator()(std::size_t a, std::size_t b) const {
    if (score[a] != score[b]) return score[a] < score[b];
    return a > b;
  }
};

// Marks the `count` first-to-go of the indices [begin, end) as pruned.
void prune_lowest(const std::vector<float>& s, std::size_t begin, std::size_t end,
                  std::size_t count, std::vector<std::size_t>& order,
                  std::vector<std::uint8_t>& mask) {
  if (count == 0) return;
  order.resize(end - begin);
  std::iota(order.begin(), order.end(), begin);
  const PruneFirst first{s.data()};
  std::nth_element(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(count - 1),
                   order.end(), first);
  for (std::size_t i = 0; i < count; ++i)
    mask[order[i]] = 0;
}

}  // namespace

std::vector<std::uint8_t> magnitude_prune_mask(std::span<const float> w, std::int64_t n,
                                               std::int64_t k,
                                               const MagnitudePruneOptions& options) {
  if (!(options.sparsity >= 0 && options.sparsity <= 1)) {
    fail(ErrorCode::kInvalidArgument,
         "magnitude pruning: sparsity " + std::to_string(options.sparsity) + " is not in [0, 1]");
  }
  const std::vector<float> s = scores(w, n, k, options.input_norms, "magnitude pruning");
  std::vector<std::uint8_t> mask(s.size(), 1);
  std::vector<std::size_t> order;
  const bool by_row = options.scope == PruneScope::kRow;
  const auto group = static_cast<std::size_t>(by_row ? k : n * k);
  const auto count =
      static_cast<std::size_t>(std::llround(options.sparsity * static_cast<double>(group)));
  for (std::size_t begin = 0; begin < s.size(); begin += group)
    prune_lowest(s, begin, begin + group, count, order, mask);
  return mask;
}

std::vector<std::uint8_t> two_four_prune_mask(std::span<const float> w, std::int64_t n,
                                              std::int64_t k, std::span<const float> input_norms) {
  if (k % 4 != 0) {
    fail(ErrorCode::kInvalidArgument,
         "2:4 pruning: rows of " + std::to_string(k) + " values are not whole groups of 4");
  }
  const std::vector<float> s = scores(w, n, k, input_norms, "2:4 pruning");
  std::vector<std::uint8_t> mask(s.size(), 1);
  const PruneFirst first{s.data()};
  for (std::size_t g = 0; g < s.size(); g += 4) {
    std::size_t order[4] = {g, g + 1, g + 2, g + 3};
    std::sort(order, order + 4, first);
    mask[order[0]] = 0;
    mask[order[1]] = 0;
  }
  return mask;
}

void apply_prune_mask(std::span<float> w, std::span<const std::uint8_t> mask) {
  if (w.size() != mask.size()) {
    fail(ErrorCode::kInvalidArgument, "apply_prune_mask: sizes disagree");
  }
  for (std::size_t i = 0; i < w.size(); ++i) {
    if (mask[i] == 0) w[i] = 0;
  }
}

}  // namespace conveyor::quant
