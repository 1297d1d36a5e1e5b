#include "worker/scoring/score_metrics.h"

#include <cmath>
#include <limits>
#include <string>

#include "common/status.h"

namespace conveyor {
namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

double logit_at(std::span<const float> logits, std::size_t i) {
  const auto x = static_cast<double>(logits[i]);
  return std::isnan(x) ? kNegInf : x;
}

}  // namespace

double NormalizedLogits::log_prob(std::int32_t token) const {
  const double x = logit_at(logits, static_cast<std::size_t>(token));
  return x == kNegInf ? kNegInf : x - log_normalizer;
}

NormalizedLogits normalize_logits(std::span<const float> logits) {
  if (logits.empty()) fail(ErrorCode::kInvalidArgument, "normalize_logits: an empty row");
  NormalizedLogits out;
  out.logits = logits;
  double max_logit = kNegInf;
  for (std::size_t i = 0; i < logits.size(); ++i) {
    const double x = logit_at(logits, i);
    if (x > max_logit) {
      max_logit = x;
      out.argmax = static_cast<std::int32_t>(i);
    }
  }
  if (max_logit == kNegInf || std::isinf(max_logit)) {
    // Nothing to normalise: every logit -inf (every log-prob -inf), or a +inf one
    // (the others' log-probs -inf, its own undefined).
    out.log_normalizer = max_logit;
    return out;
  }
  // exp in double too: the sum's relative error is what a perplexity inherits.
  double sum = 0;
  for (std::size_t i = 0; i < logits.size(); ++i)
    sum += std::exp(logit_at(logits, i) - max_logit);
  out.log_normalizer = max_logit + std::log(sum);
  return out;
}

double kl_divergence(const NormalizedLogits& p, const NormalizedLogits& q) {
  if (p.logits.size() != q.logits.size()) {
    fail(ErrorCode::kInvalidArgument, "kl_divergence: rows of " + std::to_string(p.logits.size()) +
                                          " and " + std::to_string(q.logits.size()) + " logits");
  }
  double kl = 0;
  for (std::size_t i = 0; i < p.logits.size(); ++i) {
    const double log_p = logit_at(p.logits, i) - p.log_normalizer;
    if (!(log_p > kNegInf)) continue;  // p_i = 0 adds nothing (also NaN from inf - inf)
    const double log_q = logit_at(q.logits, i) - q.log_normalizer;
    kl += std::exp(log_p) * (log_p - log_q);
  }
  // Rounding can leave a hair below zero for identical rows; KL itself never is.
  return kl > 0 ? kl : 0.0;
}

void PerplexityAccumulator::add(const NormalizedLogits& logits, std::int32_t target) {
  add_nll(-logits.log_prob(target));
}

void PerplexityAccumulator::add_nll(double nll) {
  sum_ += nll;
  ++count_;
}

double PerplexityAccumulator::mean_nll() const {
  return count_ > 0 ? sum_ / static_cast<double>(count_) : 0.0;
}

double PerplexityAccumulator::perplexity() const {
  return std::exp(mean_nll());
}

void DivergenceAccumulator::add(const NormalizedLogits& reference, const NormalizedLogits& model) {
  kl_sum_ += kl_divergence(reference, model);
  if (reference.argmax == model.argmax) ++agreed_;
  ++count_;
}

double DivergenceAccumulator::mean_kl() const {
  return count_ > 0 ? kl_sum_ / static_cast<double>(count_) : 0.0;
}

double DivergenceAccumulator::top1_agreement() const {
  return count_ > 0 ? static_cast<double>(agreed_) / static_cast<double>(count_) : 0.0;
}

}  // namespace conveyor
