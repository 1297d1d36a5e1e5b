// The quality measures of `conveyor eval`, over next-token distributions given as raw
// logits: the negative log-likelihood of the token that came (perplexity), the KL
// divergence of a model's distribution from a reference's, and whether their most
// likely tokens agree. Pure functions and accumulators, in double throughout: a
// perplexity is an exponential of a mean over tens of thousands of positions, and a
// KL of two near-identical distributions is a small difference of large sums.
#pragma once

#include <cstdint>
#include <span>

namespace conveyor {

// One row of logits with what log-softmax needs: log p_i = logits[i] - log_normalizer.
// NaN logits count as -inf (probability 0), as in the sampler's log-probs.
struct NormalizedLogits {
  std::span<const float> logits;
  double log_normalizer = 0;  // max + log(sum exp(x - max)), in double
  std::int32_t argmax = -1;   // the first of equal maxima; -1 when every logit is -inf

  // log p(token); -inf for a NaN or -inf logit. `token` must be inside the row.
  double log_prob(std::int32_t token) const;
};

// Throws Error(kInvalidArgument) for an empty row.
NormalizedLogits normalize_logits(std::span<const float> logits);

// KL(p || q) = sum_i p_i (log p_i - log q_i) >= 0, with 0 log 0 = 0; +inf where q gives
// probability 0 to a token p does not. The rows must be of one length.
double kl_divergence(const NormalizedLogits& p, const NormalizedLogits& q);

// Mean negative log-likelihood of the tokens that came, and its exponential.
class PerplexityAccumulator {
 public:
  // `target` is the token that followed the position whose logits these are.
  void add(const NormalizedLogits& logits, std::int32_t target);
  void add_nll(double nll);

  std::int64_t count() const { return count_; }
  double mean_nll() const;    // 0 before anything was added
  double perplexity() const;  // exp(mean_nll()); 1 before anything was added

 private:
  double sum_ = 0;
  std::int64_t count_ = 0;
};

// How far a model's next-token distributions are from a reference's at the same
// positions: mean KL(reference || model) and the share of positions whose most likely
// tokens are the same.
class DivergenceAccumulator {
 public:
  void add(const NormalizedLogits& reference, const NormalizedLogits& model);

  std::int64_t count() const { return count_; }
  double mean_kl() const;         // 0 before anything was added
  double top1_agreement() const;  // in [0, 1]; 0 before anything was added

 private:
  double kl_sum_ = 0;
  std::int64_t agreed_ = 0;
  std::int64_t count_ = 0;
};

}  // namespace conveyor
