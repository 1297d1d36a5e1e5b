// Random matrices for the quantiser tests.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

namespace conveyor::testing {

// Normal values, each row under its own spread (2^-12 .. 2^4), so that scales of
// very different sizes (f16 subnormals included) are exercised.
inline std::vector<float> random_rows(std::int64_t n, std::int64_t k, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> exponent(-12.0f, 4.0f);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> w(static_cast<std::size_t>(n * k));
  for (std::int64_t r = 0; r < n; ++r) {
    const float spread = std::exp2(exponent(rng));
    for (std::int64_t i = 0; i < k; ++i)
      w[static_cast<std::size_t>(r * k + i)] = normal(rng) * spread;
  }
  return w;
}

}  // namespace conveyor::testing
