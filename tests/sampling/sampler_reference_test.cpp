// The sampler against a direct transcription of its specification (full sort, no
// partial selection) on a vocabulary of realistic size, where the nucleus spans
// many of the sampler's selection chunks.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "sampling_test_util.h"

using namespace conveyor;
using namespace conveyor::testing;

namespace {

constexpr std::size_t kVocab = 151936;  // Qwen2's

std::vector<float> random_logits(std::size_t vocab, float spread, std::uint64_t seed) {
  std::mt19937_64 engine(seed);
  std::normal_distribution<float> normal(0.0f, spread);
  std::vector<float> logits(vocab);
  for (float& logit : logits)
    logit = normal(engine);
  return logits;
}

std::map<std::int32_t, double> reference_distribution(const std::vector<float>& logits,
                                                      const SamplingParams& params) {
  std::vector<ScoredToken> ranked;
  for (std::size_t i = 0; i < logits.size(); ++i) {
    if (logits[i] > -std::numeric_limits<float>::infinity()) {
      ranked.push_back({logits[i], static_cast<std::int32_t>(i)});
    }
  }
  std::sort(ranked.begin(), ranked.end(), ranks_before);
  std::size_t count = ranked.size();
  if (params.top_k > 0) count = std::min(count, static_cast<std::size_t>(params.top_k));
  // The same float arithmetic as the sampler, so only the selection logic differs.
  const float inverse_temperature = 1.0f / params.temperature;
  std::vector<float> weights;
  for (std::size_t i = 0; i < count; ++i) {
    weights.push_back(std::exp((ranked[i].score - ranked[0].score) * inverse_temperature));
  }
  if (params.top_p < 1.0f) {
    double total = 0.0;
    for (float w : weights)
      total += w;
    const double target = static_cast<double>(params.top_p) * total;
    double mass = 0.0;
    for (std::size_t i = 0; i < count; ++i) {
      mass += weights[i];
      if (mass >= target) {
        count = i + 1;
        break;
      }
    }
  }
  std::map<std::int32_t, double> out;
  double total = 0.0;
  for (std::size_t i = 0; i < count; ++i) {
    if (weights[i] >= params.min_p && weights[i] > 0.0f) {
      out[ranked[i].token] = weights[i];
      total += weights[i];
    }
  }
  for (auto& [token, probability] : out)
    probability /= total;
  return out;
}

void check_against_reference(const std::vector<float>& logits, const SamplingParams& params) {
  Sampler sampler;
  const auto actual = as_map(sampler.distribution(logits, params, TokenHistory{}));
  const auto expected = reference_distribution(logits, params);
  CAPTURE(expected.size());
  REQUIRE(actual.size() == expected.size());
  auto it = actual.begin();
  for (const auto& [token, probability] : expected) {
    REQUIRE(it->first == token);
    CHECK(it->second == doctest::Approx(probability).epsilon(1e-6));
    ++it;
  }
}

}  // namespace

TEST_CASE("filters match the specification on a 152k vocabulary") {
  const std::vector<float> flat = random_logits(kVocab, 1.0f, 1);
  const std::vector<float> peaked = random_logits(kVocab, 4.0f, 2);
  SamplingParams params;

  SUBCASE("wide nucleus") {
    params.top_p = 0.9f;
    check_against_reference(flat, params);
  }
  SUBCASE("narrow nucleus") {
    params.top_p = 0.5f;
    check_against_reference(peaked, params);
  }
  SUBCASE("top-k then top-p") {
    params.top_k = 5000;
    params.top_p = 0.7f;
    check_against_reference(flat, params);
  }
  SUBCASE("top-k alone") {
    params.top_k = 50;
    check_against_reference(peaked, params);
  }
  SUBCASE("min-p with temperature") {
    params.temperature = 0.7f;
    params.min_p = 0.05f;
    check_against_reference(peaked, params);
  }
  SUBCASE("everything") {
    params.temperature = 1.3f;
    params.top_k = 20000;
    params.top_p = 0.95f;
    params.min_p = 0.01f;
    check_against_reference(flat, params);
  }
}

// Reports the cost per token in CPU time (wall time is too noisy on a shared
// machine); asserts nothing, as timings depend on the host.
TEST_CASE("cost of sampling a 152k vocabulary") {
  const std::vector<float> logits = random_logits(kVocab, 3.0f, 3);
  struct Case {
    const char* name;
    SamplingParams params;
  };
  SamplingParams greedy;
  greedy.temperature = 0.0f;
  SamplingParams plain;
  SamplingParams nucleus;
  nucleus.top_p = 0.9f;
  SamplingParams typical;
  typical.temperature = 0.7f;
  typical.top_k = 50;
  typical.top_p = 0.95f;
  SamplingParams soft_labels;
  soft_labels.temperature = 0.0f;
  soft_labels.logprobs = true;
  soft_labels.top_logprobs = 100;
  for (const Case& c : {Case{"greedy", greedy}, Case{"temperature 1", plain},
                        Case{"top_p 0.9", nucleus}, Case{"T 0.7 top_k 50 top_p 0.95", typical},
                        Case{"greedy + top 100 logprobs", soft_labels}}) {
    Sampler sampler;
    Rng rng(1);
    const TokenHistory history;
    (void)sampler.sample(logits, c.params, history, rng);  // sizes the scratch buffers
    const int iterations = 20;
    const std::clock_t start = std::clock();
    for (int i = 0; i < iterations; ++i)
      (void)sampler.sample(logits, c.params, history, rng);
    const double microseconds =
        1e6 * static_cast<double>(std::clock() - start) / CLOCKS_PER_SEC / iterations;
    MESSAGE(std::string(c.name) << ": " << microseconds << " us of CPU per token");
  }
}
