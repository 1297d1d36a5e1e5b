// Log-probabilities of the model's raw distribution, as the OpenAI API reports them:
// log-softmax of the logits before penalties and temperature. Also what soft-label
// export for distillation reads, hence k up to the whole vocabulary.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace conveyor {

struct TokenLogprob {
  std::int32_t token = 0;
  float logprob = 0.0f;
};

// A token with a score, ranked by ranks_before().
struct ScoredToken {
  float score = 0.0f;
  std::int32_t token = 0;
};

// The one ranking used wherever tokens are ordered by likelihood: higher score
// first, then lower id. A strict total order, so every implementation that follows
// it (partial sort, full sort, a GPU radix sort) agrees on ties. Scores must not be
// NaN; callers map NaN to -inf first.
inline bool ranks_before(const ScoredToken& a, const ScoredToken& b) {
  return a.score > b.score || (a.score == b.score && a.token < b.token);
}

// log(sum(exp(logits))), accumulated in double. NaN logits count as -inf; the
// result is -inf when every logit is.
double log_sum_exp(std::span<const float> logits);

// The k most likely tokens (k is clamped to the vocabulary), best first, ties by
// lower id, each with logprob = logit - log_sum_exp. About O(V + k log k): a bucket
// histogram finds the few buckets holding the best k, and only those are sorted.
// `scratch` is reused between calls.
void top_logprobs(std::span<const float> logits, double log_sum_exp_value, std::size_t k,
                  std::vector<ScoredToken>& scratch, std::vector<TokenLogprob>& out);

}  // namespace conveyor
