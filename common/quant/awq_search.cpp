#include "common/quant/awq_search.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "common/dequantize.h"
#include "common/quant/channel_stats.h"
#include "common/quant/dot.h"
#include "common/quant/int4_groups.h"
#include "common/quant/weight_checks.h"
#include "common/status.h"

namespace conveyor::quant {
namespace {

constexpr float kMinScale = 1e-4f;  // AWQ's clamp: a silent channel still gets a scale

// Sum over X's rows and W's rows of (x . (w - w_eff))^2, w_eff = Q(w diag(s)) diag(1/s):
// the header's X W^T - (X diag(1/s)) Q(W diag(s))^T rearranged into one product.
double squared_error(const AwqWeight& weight, std::span<const float> x, std::int64_t m,
                     std::int64_t k, DType type, std::span<const float> scales) {
  std::vector<float> scaled(weight.values.begin(), weight.values.end());
  scale_weight_columns(scaled, weight.rows, k, scales);
  const QuantizedTensor q = quantize_int4_groups(type, scaled, weight.rows, k);
  std::vector<float> diff = dequantize_tensor(q.view("awq"));
  for (std::int64_t r = 0; r < weight.rows; ++r) {
    for (std::int64_t j = 0; j < k; ++j) {
      float& d = diff[static_cast<std::size_t>(r * k + j)];
      d = weight.values[static_cast<std::size_t>(r * k + j)] -
          d / scales[static_cast<std::size_t>(j)];
    }
  }
  double sum = 0;
  for (std::int64_t i = 0; i < m; ++i) {
    for (std::int64_t r = 0; r < weight.rows; ++r) {
      const double e = dot(x.data() + i * k, diff.data() + r * k, k);
      sum += e * e;
    }
  }
  return sum;
}

}  // namespace

std::vector<float> awq_scales(std::span<const float> mean_abs, float alpha) {
  std::vector<float> s(mean_abs.size());
  for (std::size_t j = 0; j < s.size(); ++j)
    s[j] = std::max(std::pow(mean_abs[j], alpha), kMinScale);
  if (s.empty()) return s;
  const auto [lo, hi] = std::minmax_element(s.begin(), s.end());
  const float norm = std::sqrt(*lo * *hi);
  for (float& v : s)
    v /= norm;
  return s;
}

AwqResult search_awq_scales(std::span<const AwqWeight> weights, std::span<const float> x,
                            std::int64_t m, std::int64_t k, const AwqOptions& options) {
  if (options.grid < 1) fail(ErrorCode::kInvalidArgument, "awq search: a grid needs a step");
  if (options.type != DType::kQ4_G128 && options.type != DType::kQ4_1) {
    fail(ErrorCode::kInvalidArgument,
         "awq search: " + std::string(dtype_name(options.type)) + " is not a group-wise int4 type");
  }
  if (weights.empty()) fail(ErrorCode::kInvalidArgument, "awq search: no weights");
  check_matrix(x, m, k, "awq search activations");
  std::int64_t total_rows = 0;
  for (const AwqWeight& w : weights) {
    check_matrix(w.values, w.rows, k, "awq search weight");
    total_rows += w.rows;
  }
  std::vector<float> mean_abs;
  if (options.mean_abs.empty()) {
    mean_abs = channel_mean_abs(x, m, k);
  } else {
    check_channel_stats(options.mean_abs, k, "awq search");
    mean_abs.assign(options.mean_abs.begin(), options.mean_abs.end());
  }
  AwqResult result;
  const double count = static_cast<double>(m) * static_cast<double>(total_rows);
  for (int step = 0; step <= options.grid; ++step) {
    const float alpha = static_cast<float>(step) / static_cast<float>(options.grid);
    std::vector<float> scales = step == 0 ? std::vector<float>(static_cast<std::size_t>(k), 1.0f)
                                          : awq_scales(mean_abs, alpha);
    double sum = 0;
    for (const AwqWeight& w : weights)
      sum += squared_error(w, x, m, k, options.type, scales);
    const double error = sum / count;
    result.errors.push_back(error);
    if (step == 0) {
      result.plain_error = error;
    }
    if (step == 0 || error < result.error) {
      result.alpha = alpha;
      result.error = error;
      result.scales = std::move(scales);
    }
  }
  return result;
}

void scale_weight_columns(std::span<float> w, std::int64_t n, std::int64_t k,
                          std::span<const float> scales) {
  if (static_cast<std::int64_t>(scales.size()) != k ||
      static_cast<std::int64_t>(w.size()) != n * k) {
    fail(ErrorCode::kInvalidArgument, "scale_weight_columns: sizes disagree");
  }
  for (std::int64_t r = 0; r < n; ++r) {
    for (std::int64_t j = 0; j < k; ++j)
      w[static_cast<std::size_t>(r * k + j)] *= scales[static_cast<std::size_t>(j)];
  }
}

void fold_scales_into_norm(std::span<float> norm_weight, std::span<const float> scales) {
  if (norm_weight.size() != scales.size()) {
    fail(ErrorCode::kInvalidArgument, "fold_scales_into_norm: sizes disagree");
  }
  for (std::size_t j = 0; j < scales.size(); ++j)
    norm_weight[j] /= scales[j];
}

}  // namespace conveyor::quant
