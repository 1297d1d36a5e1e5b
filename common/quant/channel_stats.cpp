#include "common/quant/channel_stats.h"

#include <cmath>

#include "common/quant/weight_checks.h"

namespace conveyor::quant {

// Sums in double: calibration sets run to many thousand tokens.

std::vector<float> channel_mean_abs(std::span<const float> x, std::int64_t m, std::int64_t k) {
  check_matrix(x, m, k, "channel statistics");
  std::vector<double> sum(static_cast<std::size_t>(k), 0.0);
  for (std::int64_t i = 0; i < m; ++i) {
    for (std::int64_t j = 0; j < k; ++j)
      sum[static_cast<std::size_t>(j)] += std::fabs(static_cast<double>(x[i * k + j]));
  }
  std::vector<float> out(sum.size());
  for (std::size_t j = 0; j < sum.size(); ++j)
    out[j] = static_cast<float>(sum[j] / static_cast<double>(m));
  return out;
}

std::vector<float> channel_l2_norms(std::span<const float> x, std::int64_t m, std::int64_t k) {
  check_matrix(x, m, k, "channel statistics");
  std::vector<double> sum(static_cast<std::size_t>(k), 0.0);
  for (std::int64_t i = 0; i < m; ++i) {
    for (std::int64_t j = 0; j < k; ++j) {
      const double v = x[i * k + j];
      sum[static_cast<std::size_t>(j)] += v * v;
    }
  }
  std::vector<float> out(sum.size());
  for (std::size_t j = 0; j < sum.size(); ++j)
    out[j] = static_cast<float>(std::sqrt(sum[j]));
  return out;
}

}  // namespace conveyor::quant
