#include "worker/sampling/logprobs.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

#include "worker/sampling/score_buckets.h"

namespace conveyor {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

float nan_to_neg_inf(float x) {
  return std::isnan(x) ? kNegInf : x;
}

}  // namespace

double log_sum_exp(std::span<const float> logits) {
  float max_logit = kNegInf;
  for (float x : logits)
    max_logit = std::max(max_logit, nan_to_neg_inf(x));
  if (max_logit == kNegInf) return -std::numeric_limits<double>::infinity();
  if (std::isinf(max_logit)) return std::numeric_limits<double>::infinity();
  // exp in float (it vectorises; its relative error is far below what a log-prob
  // needs), sum in double so 150k small terms do not lose the tail.
  double sum = 0.0;
  for (float x : logits)
    sum += static_cast<double>(std::exp(nan_to_neg_inf(x) - max_logit));
  return static_cast<double>(max_logit) + std::log(sum);
}

void top_logprobs(std::span<const float> logits, double log_sum_exp_value, std::size_t k,
                  std::vector<ScoredToken>& scratch, std::vector<TokenLogprob>& out) {
  out.clear();
  k = std::min(k, logits.size());
  if (k == 0) return;
  float max_logit = kNegInf;
  for (float x : logits)
    max_logit = std::max(max_logit, nan_to_neg_inf(x));

  // Gather only the buckets that hold the best k, then select within them.
  scratch.clear();
  scratch.reserve(logits.size());
  std::uint32_t last_bucket = kScoreBuckets - 1;
  if (k < logits.size() && std::isfinite(max_logit)) {
    std::array<std::uint32_t, kScoreBuckets> counts{};
    for (float x : logits)
      ++counts[score_bucket(max_logit - nan_to_neg_inf(x))];
    std::size_t reached = 0;
    for (std::uint32_t bucket = 0; bucket < kScoreBuckets; ++bucket) {
      reached += counts[bucket];
      if (reached >= k) {
        last_bucket = bucket;
        break;
      }
    }
  }
  for (std::size_t i = 0; i < logits.size(); ++i) {
    const float x = nan_to_neg_inf(logits[i]);
    if (last_bucket == kScoreBuckets - 1 || score_bucket(max_logit - x) <= last_bucket) {
      scratch.push_back({x, static_cast<std::int32_t>(i)});
    }
  }

  const auto middle = scratch.begin() + static_cast<std::ptrdiff_t>(k);
  if (k < scratch.size()) std::nth_element(scratch.begin(), middle, scratch.end(), ranks_before);
  std::sort(scratch.begin(), middle, ranks_before);
  out.reserve(k);
  for (auto it = scratch.begin(); it != middle; ++it) {
    out.push_back(
        {it->token, static_cast<float>(static_cast<double>(it->score) - log_sum_exp_value)});
  }
}

}  // namespace conveyor
