// Sampler: one token from one row of logits. The CPU reference for sampling, and the
// twin a GPU sampler is compared against.
//
// Order of operations (vLLM and Hugging Face):
//   penalties -> temperature -> top-k -> top-p -> min-p -> softmax -> draw.
// Greedy (temperature below kGreedyTemperature) is the argmax after penalties, lowest
// id on ties; the filters do not apply.
//
// The draw is fully specified so that another implementation can reproduce it
// exactly, up to the order in which sums are rounded:
//  - tokens are ranked by ranks_before() on the penalised logits (temperature does
//    not change the ranking);
//  - top-k keeps the first k;
//  - top-p keeps the shortest ranked prefix whose mass reaches top_p of the mass
//    that top-k left;
//  - min-p drops tokens whose probability is below min_p times the largest;
//  - the survivors, in token-id order, are drawn by inverse CDF with one uniform u
//    from Rng: the first token whose running weight exceeds u * total weight.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "worker/sampling/logprobs.h"
#include "worker/sampling/rng.h"
#include "worker/sampling/sampling_params.h"
#include "worker/sampling/token_history.h"

namespace conveyor {

struct SampleResult {
  std::int32_t token = -1;
  // Only when params.logprobs: the chosen token's log-probability under the raw
  // logits, and params.top_logprobs alternatives, best first, ties by lower id.
  std::optional<float> logprob;
  std::vector<TokenLogprob> top_logprobs;
};

struct TokenProbability {
  std::int32_t token = 0;
  double probability = 0.0;
};

// Holds scratch buffers sized to the vocabulary, reused across calls, so sampling
// allocates nothing per token beyond the result's log-prob list. Not thread-safe:
// one Sampler per thread.
class Sampler {
 public:
  // Consumes exactly one uniform from `rng`, greedy or not, so rng.step() counts the
  // tokens sampled. `logits` is one row, one entry per vocabulary token (-inf masks a
  // token). `params` should have passed validate(). Throws Error(kInvalidArgument)
  // when no token can be sampled (every logit -inf or NaN, or a +inf logit) and
  // Error(kOutOfRange) when the history holds a token outside the vocabulary.
  SampleResult sample(std::span<const float> logits, const SamplingParams& params,
                      const TokenHistory& history, Rng& rng);

  // The distribution the draw would use, after every filter: tokens with a nonzero
  // probability, in id order, probabilities summing to 1. For tests and for
  // comparing against other implementations; allocates.
  std::vector<TokenProbability> distribution(std::span<const float> logits,
                                             const SamplingParams& params,
                                             const TokenHistory& history);

 private:
  struct Candidate {
    float logit = 0.0f;   // penalised, before temperature: the ranking key
    float weight = 0.0f;  // exp((logit - max) / temperature): unnormalised probability
    std::int32_t token = 0;
    std::uint32_t bucket = 0;  // score_bucket() of the temperature-scaled gap to the max
  };

  // The logits with penalties applied: a view of `logits` itself when there are none.
  std::span<const float> penalised(std::span<const float> logits, const SamplingParams& params,
                                   const TokenHistory& history);
  // Leaves the tokens that survive every filter in candidates_[0, n), in id order
  // with their weights, and returns n.
  std::size_t filter(std::span<const float> logits, const SamplingParams& params);
  // Keeps, of candidates_[0, count), the shortest ranked prefix at whose last token
  // the running count reaches `min_count` or the running weight reaches `min_weight`,
  // preserving id order; returns its length.
  std::size_t keep_ranked_prefix(std::size_t count, std::size_t min_count, double min_weight);
  double total_weight(std::size_t count) const;
  static std::int32_t argmax(std::span<const float> logits);

  std::vector<float> penalised_;
  std::vector<Candidate> candidates_;
  std::vector<Candidate> boundary_bucket_;
  std::vector<std::uint32_t> bucket_counts_;
  std::vector<double> bucket_weights_;
  std::vector<ScoredToken> logprob_scratch_;
};

}  // namespace conveyor
