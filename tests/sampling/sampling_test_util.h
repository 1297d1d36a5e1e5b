// Helpers shared by the sampling tests.
#pragma once

#include <cmath>
#include <cstdint>
#include <map>
#include <vector>

#include "worker/sampling/sampler.h"

namespace conveyor::testing {

// Logits whose softmax is exactly `probs` (up to float rounding).
inline std::vector<float> logits_from_probs(const std::vector<double>& probs) {
  std::vector<float> logits;
  for (double p : probs)
    logits.push_back(static_cast<float>(std::log(p)));
  return logits;
}

// Softmax of logits / temperature over the tokens in `kept`, in double.
inline std::map<std::int32_t, double> expected_distribution(const std::vector<float>& logits,
                                                            double temperature,
                                                            const std::vector<std::int32_t>& kept) {
  std::map<std::int32_t, double> out;
  double total = 0.0;
  for (std::int32_t token : kept) {
    out[token] =
        std::exp(static_cast<double>(logits[static_cast<std::size_t>(token)]) / temperature);
    total += out[token];
  }
  for (auto& [token, probability] : out)
    probability /= total;
  return out;
}

inline std::map<std::int32_t, double> as_map(const std::vector<TokenProbability>& distribution) {
  std::map<std::int32_t, double> out;
  for (const TokenProbability& entry : distribution)
    out[entry.token] = entry.probability;
  return out;
}

// Token frequencies over `draws` samples from one seeded sequence.
inline std::vector<double> sample_frequencies(const std::vector<float>& logits,
                                              const SamplingParams& params, std::uint64_t seed,
                                              int draws) {
  Sampler sampler;
  Rng rng(seed);
  TokenHistory history;
  std::vector<double> counts(logits.size(), 0.0);
  for (int i = 0; i < draws; ++i) {
    counts[static_cast<std::size_t>(sampler.sample(logits, params, history, rng).token)] += 1.0;
  }
  for (double& count : counts)
    count /= draws;
  return counts;
}

}  // namespace conveyor::testing
