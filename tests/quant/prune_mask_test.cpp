// Pruning masks: exact counts, the lowest scores go, ties broken the same way always.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "common/quant/prune_mask.h"
#include "common/status.h"
#include "tests/quant/quant_test_util.h"

using namespace conveyor;
using namespace conveyor::quant;
using conveyor::testing::random_rows;

namespace {

std::int64_t zeros(const std::vector<std::uint8_t>& mask, std::size_t begin, std::size_t end) {
  return std::count(mask.begin() + static_cast<std::ptrdiff_t>(begin),
                    mask.begin() + static_cast<std::ptrdiff_t>(end), 0);
}

// Every kept weight scores at least as high as every pruned one in [begin, end).
bool lowest_pruned(const std::vector<float>& score, const std::vector<std::uint8_t>& mask,
                   std::size_t begin, std::size_t end) {
  float max_pruned = -1, min_kept = INFINITY;
  for (std::size_t i = begin; i < end; ++i) {
    if (mask[i] == 0) max_pruned = std::max(max_pruned, score[i]);
    if (mask[i] != 0) min_kept = std::min(min_kept, score[i]);
  }
  return max_pruned <= min_kept;
}

}  // namespace

TEST_CASE("magnitude pruning zeroes exactly the share asked for, lowest |w| first") {
  const std::int64_t n = 37, k = 53;
  const std::vector<float> w = random_rows(n, k, 7);
  std::vector<float> score(w.size());
  std::transform(w.begin(), w.end(), score.begin(), [](float v) { return std::fabs(v); });
  for (double sparsity : {0.0, 0.1, 0.3, 0.5, 0.77, 1.0}) {
    CAPTURE(sparsity);
    MagnitudePruneOptions options;
    options.sparsity = sparsity;
    const auto mask = magnitude_prune_mask(w, n, k, options);
    REQUIRE(mask.size() == w.size());
    CHECK(zeros(mask, 0, mask.size()) == std::llround(sparsity * static_cast<double>(n * k)));
    CHECK(lowest_pruned(score, mask, 0, mask.size()));
    options.scope = PruneScope::kRow;
    const auto by_row = magnitude_prune_mask(w, n, k, options);
    for (std::int64_t r = 0; r < n; ++r) {
      const auto begin = static_cast<std::size_t>(r * k);
      CHECK(zeros(by_row, begin, begin + k) == std::llround(sparsity * static_cast<double>(k)));
      CHECK(lowest_pruned(score, by_row, begin, begin + k));
    }
  }
}

TEST_CASE("activation norms change which weights go (Wanda)") {
  const std::int64_t n = 8, k = 16;
  const std::vector<float> w = random_rows(n, k, 8);
  std::vector<float> norms(k, 1.0f);
  norms[5] = 1000.0f;  // a loud channel: its weights are all kept
  norms[6] = 0.0f;     // a silent one: its weights go first
  MagnitudePruneOptions options;
  options.sparsity = 0.25;
  options.input_norms = norms;
  const auto mask = magnitude_prune_mask(w, n, k, options);
  CHECK(zeros(mask, 0, mask.size()) == 32);
  for (std::int64_t r = 0; r < n; ++r) {
    CHECK(mask[static_cast<std::size_t>(r * k + 5)] == 1);
    CHECK(mask[static_cast<std::size_t>(r * k + 6)] == 0);
  }
}

TEST_CASE("ties are broken by position: the earlier weight is kept") {
  const std::vector<float> w(12, 0.5f);
  MagnitudePruneOptions options;
  options.sparsity = 0.5;
  const auto mask = magnitude_prune_mask(w, 3, 4, options);
  CHECK(mask == std::vector<std::uint8_t>{1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0});
  CHECK(two_four_prune_mask(w, 3, 4) ==
        std::vector<std::uint8_t>{1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0});
}

TEST_CASE("2:4 pruning keeps exactly the 2 largest of every 4") {
  const std::int64_t n = 19, k = 64;
  const std::vector<float> w = random_rows(n, k, 9);
  std::vector<float> score(w.size());
  std::transform(w.begin(), w.end(), score.begin(), [](float v) { return std::fabs(v); });
  const auto mask = two_four_prune_mask(w, n, k);
  for (std::size_t g = 0; g < mask.size(); g += 4) {
    REQUIRE(zeros(mask, g, g + 4) == 2);
    REQUIRE(lowest_pruned(score, mask, g, g + 4));
  }
  std::vector<float> pruned = w;
  apply_prune_mask(pruned, mask);
  for (std::size_t i = 0; i < w.size(); ++i)
    CHECK(pruned[i] == (mask[i] ? w[i] : 0.0f));
  // With activation norms, the loud channel survives in its group.
  std::vector<float> norms(k, 1.0f);
  norms[2] = 1e6f;
  const auto weighted = two_four_prune_mask(w, n, k, norms);
  for (std::int64_t r = 0; r < n; ++r)
    CHECK(weighted[static_cast<std::size_t>(r * k + 2)] == 1);
}

TEST_CASE("pruning refuses bad arguments") {
  const std::vector<float> w(24, 1.0f);
  MagnitudePruneOptions options;
  options.sparsity = 1.5;
  CHECK_THROWS_AS(magnitude_prune_mask(w, 4, 6, options), Error);
  options.sparsity = 0.5;
  CHECK_THROWS_AS(magnitude_prune_mask(w, 4, 5, options), Error);  // not [4, 5]
  CHECK_THROWS_AS(two_four_prune_mask(w, 4, 6), Error);            // 6 is not groups of 4
  const std::vector<float> negative(6, -1.0f);
  options.input_norms = negative;
  CHECK_THROWS_AS(magnitude_prune_mask(w, 4, 6, options), Error);
  std::vector<float> out(3);
  CHECK_THROWS_AS(apply_prune_mask(out, std::vector<std::uint8_t>(4, 1)), Error);
}
