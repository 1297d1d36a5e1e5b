#include "worker/sampling/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "common/status.h"
#include "worker/sampling/penalties.h"
#include "worker/sampling/score_buckets.h"

namespace conveyor {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

}  // namespace

SampleResult Sampler::sample(std::span<const float> logits, const SamplingParams& params,
                             const TokenHistory& history, Rng& rng) {
  const double uniform = rng.next_uniform();
  SampleResult result;
  const std::span<const float> scores = penalised(logits, params, history);
  if (params.is_greedy()) {
    result.token = argmax(scores);
  } else {
    const std::size_t count = filter(scores, params);
    const double total = total_weight(count);
    const double target = uniform * total;
    double running = 0.0;
    result.token = candidates_[count - 1].token;  // reached only through rounding
    for (std::size_t i = 0; i < count; ++i) {
      running += candidates_[i].weight;
      if (running > target) {
        result.token = candidates_[i].token;
        break;
      }
    }
  }
  if (params.logprobs) {
    const double normaliser = log_sum_exp(logits);
    const auto chosen = static_cast<std::size_t>(result.token);
    result.logprob = static_cast<float>(static_cast<double>(logits[chosen]) - normaliser);
    if (params.top_logprobs > 0) {
      top_logprobs(logits, normaliser, static_cast<std::size_t>(params.top_logprobs),
                   logprob_scratch_, result.top_logprobs);
    }
  }
  return result;
}

std::vector<TokenProbability> Sampler::distribution(std::span<const float> logits,
                                                    const SamplingParams& params,
                                                    const TokenHistory& history) {
  const std::span<const float> scores = penalised(logits, params, history);
  if (params.is_greedy()) return {{argmax(scores), 1.0}};
  const std::size_t count = filter(scores, params);
  const double total = total_weight(count);
  std::vector<TokenProbability> out;
  for (std::size_t i = 0; i < count; ++i) {
    if (candidates_[i].weight > 0.0f) {
      out.push_back({candidates_[i].token, candidates_[i].weight / total});
    }
  }
  return out;
}

std::span<const float> Sampler::penalised(std::span<const float> logits,
                                          const SamplingParams& params,
                                          const TokenHistory& history) {
  if (!has_penalties(params)) return logits;
  penalised_.assign(logits.begin(), logits.end());
  apply_penalties(penalised_, params, history);
  return penalised_;
}

double Sampler::total_weight(std::size_t count) const {
  double total = 0.0;
  for (std::size_t i = 0; i < count; ++i)
    total += candidates_[i].weight;
  return total;
}

std::int32_t Sampler::argmax(std::span<const float> logits) {
  // Two passes: the max reduction vectorises, and the search for its first index
  // stops early. Comparisons with NaN are false, so NaN is never picked.
  float best_logit = kNegInf;
  for (float x : logits) {
    best_logit = x > best_logit ? x : best_logit;
  }
  if (!(best_logit > kNegInf)) {
    fail(ErrorCode::kInvalidArgument, "every logit is -inf or NaN: nothing to sample");
  }
  const auto it = std::find(logits.begin(), logits.end(), best_logit);
  return static_cast<std::int32_t>(it - logits.begin());
}

std::size_t Sampler::filter(std::span<const float> logits, const SamplingParams& params) {
  // Candidates: every token that can be drawn at all, in id order. -inf is a mask;
  // NaN fails the comparison too, so a broken logit is never sampled.
  float max_logit = kNegInf;
  for (float logit : logits) {
    max_logit = logit > max_logit ? logit : max_logit;
  }
  if (!(max_logit > kNegInf)) {
    fail(ErrorCode::kInvalidArgument, "every logit is -inf or NaN: nothing to sample");
  }
  if (std::isinf(max_logit)) fail(ErrorCode::kInvalidArgument, "a logit is +inf");

  // Temperature scales the gap to the best token; the bucket of the scaled gap ranks
  // candidates for top-k and top-p.
  const float inverse_temperature = 1.0f / params.temperature;
  const auto scaled_gap = [&](float logit) { return (max_logit - logit) * inverse_temperature; };
  candidates_.clear();
  candidates_.reserve(logits.size());
  for (std::size_t i = 0; i < logits.size(); ++i) {
    const float logit = logits[i];
    if (logit > kNegInf) {
      candidates_.push_back(
          {logit, 0.0f, static_cast<std::int32_t>(i), score_bucket(scaled_gap(logit))});
    }
  }

  // Top-k needs only the ranking, so it runs before the exponentials, which then cost
  // k instead of the vocabulary.
  std::size_t count = candidates_.size();
  if (params.top_k > 0 && static_cast<std::size_t>(params.top_k) < count) {
    count = keep_ranked_prefix(count, static_cast<std::size_t>(params.top_k),
                               std::numeric_limits<double>::infinity());
  }
  // Weights are relative to the best token, whose weight is exactly 1: that is what
  // min-p compares against. The exponential is taken in double and rounded to float, so
  // that another implementation's (a GPU's) lands on the same float but in the rarest
  // case, where float exponentials may differ by an ulp or two.
  for (std::size_t i = 0; i < count; ++i) {
    candidates_[i].weight =
        static_cast<float>(std::exp(-static_cast<double>(scaled_gap(candidates_[i].logit))));
  }

  if (params.top_p < 1.0f) {
    const double total = total_weight(count);
    count = keep_ranked_prefix(count, std::numeric_limits<std::size_t>::max(),
                               static_cast<double>(params.top_p) * total);
  }
  if (params.min_p > 0.0f) {
    const float threshold = params.min_p;
    const auto end = candidates_.begin() + static_cast<std::ptrdiff_t>(count);
    count = static_cast<std::size_t>(
        std::remove_if(candidates_.begin(), end,
                       [&](const Candidate& c) { return c.weight < threshold; }) -
        candidates_.begin());
  }
  return count;
}

std::size_t Sampler::keep_ranked_prefix(std::size_t count, std::size_t min_count,
                                        double min_weight) {
  const auto reached = [&](std::size_t n, double weight) {
    return n >= min_count || weight >= min_weight;
  };
  // Which bucket holds the last token of the prefix?
  bucket_counts_.assign(kScoreBuckets, 0);
  bucket_weights_.assign(kScoreBuckets, 0.0);
  for (std::size_t i = 0; i < count; ++i) {
    ++bucket_counts_[candidates_[i].bucket];
    bucket_weights_[candidates_[i].bucket] += candidates_[i].weight;
  }
  std::size_t count_above = 0;
  double weight_above = 0.0;
  std::uint32_t boundary = 0;
  while (boundary < kScoreBuckets && !reached(count_above + bucket_counts_[boundary],
                                              weight_above + bucket_weights_[boundary])) {
    count_above += bucket_counts_[boundary];
    weight_above += bucket_weights_[boundary];
    ++boundary;
  }
  if (boundary == kScoreBuckets) return count;  // every candidate is needed

  // Rank only that bucket to find the prefix's last token.
  boundary_bucket_.clear();
  for (std::size_t i = 0; i < count; ++i) {
    if (candidates_[i].bucket == boundary) boundary_bucket_.push_back(candidates_[i]);
  }
  const auto ranks_first = [](const Candidate& a, const Candidate& b) {
    return ranks_before({a.logit, a.token}, {b.logit, b.token});
  };
  std::sort(boundary_bucket_.begin(), boundary_bucket_.end(), ranks_first);
  // When rounding keeps the running weight just short of what the bucket sum
  // promised, the whole bucket stays.
  Candidate last = boundary_bucket_.back();
  for (const Candidate& c : boundary_bucket_) {
    ++count_above;
    weight_above += c.weight;
    if (reached(count_above, weight_above)) {
      last = c;
      break;
    }
  }

  // Keep what ranks at or before `last`, in id order.
  const auto end = candidates_.begin() + static_cast<std::ptrdiff_t>(count);
  const auto kept_end = std::remove_if(candidates_.begin(), end, [&](const Candidate& c) {
    return c.bucket > boundary || (c.bucket == boundary && ranks_first(last, c));
  });
  return static_cast<std::size_t>(kept_end - candidates_.begin());
}

}  // namespace conveyor
