// Each filter on a small hand-computed distribution: which tokens survive, with
// which probabilities, and that draws follow those probabilities.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "common/status.h"
#include "sampling_test_util.h"

using namespace conveyor;
using namespace conveyor::testing;

namespace {

// softmax(logits) = {0.4, 0.3, 0.15, 0.1, 0.05}
const std::vector<double> kProbs = {0.4, 0.3, 0.15, 0.1, 0.05};

std::vector<std::int32_t> survivors(const std::vector<float>& logits,
                                    const SamplingParams& params) {
  Sampler sampler;
  std::vector<std::int32_t> tokens;
  for (const TokenProbability& entry : sampler.distribution(logits, params, TokenHistory{})) {
    tokens.push_back(entry.token);
  }
  return tokens;
}

void check_distribution(const std::vector<float>& logits, const SamplingParams& params,
                        const std::vector<std::int32_t>& kept) {
  Sampler sampler;
  const auto actual = as_map(sampler.distribution(logits, params, TokenHistory{}));
  const auto expected = expected_distribution(logits, params.temperature, kept);
  REQUIRE(actual.size() == expected.size());
  for (const auto& entry : expected) {
    const std::int32_t token = entry.first;
    CAPTURE(token);
    REQUIRE(actual.count(token) == 1);
    CHECK(actual.at(token) == doctest::Approx(entry.second).epsilon(1e-5));
  }
}

void check_frequencies(const std::vector<float>& logits, const SamplingParams& params,
                       const std::vector<std::int32_t>& kept) {
  const auto expected = expected_distribution(logits, params.temperature, kept);
  const std::vector<double> frequencies = sample_frequencies(logits, params, 20240607, 20000);
  for (std::size_t token = 0; token < logits.size(); ++token) {
    CAPTURE(token);
    const auto it = expected.find(static_cast<std::int32_t>(token));
    const double probability = it == expected.end() ? 0.0 : it->second;
    // 20k draws: the standard error is at most 0.0036; 0.015 is over 4 of them.
    CHECK(std::abs(frequencies[token] - probability) < 0.015);
  }
}

}  // namespace

TEST_CASE("greedy picks the argmax, lowest id on ties") {
  Sampler sampler;
  TokenHistory history;
  Rng rng(1);
  SamplingParams params;
  params.temperature = 0.0f;
  CHECK(sampler.sample(std::vector<float>{0.1f, 2.0f, -1.0f, 1.9f}, params, history, rng).token ==
        1);
  CHECK(sampler.sample(std::vector<float>{1.0f, 3.0f, 3.0f, 2.0f}, params, history, rng).token ==
        1);
  const float neg_inf = -std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  CHECK(sampler.sample(std::vector<float>{nan, neg_inf, -50.0f}, params, history, rng).token == 2);
  // Below the greedy threshold counts as greedy too.
  params.temperature = 1e-7f;
  CHECK(sampler.sample(std::vector<float>{0.0f, 0.0f, 0.5f}, params, history, rng).token == 2);
  CHECK(rng.step() == 4);  // one uniform per token, greedy or not
}

TEST_CASE("nothing to sample is an error, not a crash") {
  Sampler sampler;
  TokenHistory history;
  Rng rng(1);
  const float neg_inf = -std::numeric_limits<float>::infinity();
  SamplingParams params;
  CHECK_THROWS_AS(sampler.sample(std::vector<float>{neg_inf, neg_inf}, params, history, rng),
                  Error);
  params.temperature = 0.0f;
  CHECK_THROWS_AS(sampler.sample(std::vector<float>{neg_inf}, params, history, rng), Error);
  params.temperature = 1.0f;
  const float inf = std::numeric_limits<float>::infinity();
  CHECK_THROWS_AS(sampler.sample(std::vector<float>{0.0f, inf}, params, history, rng), Error);
}

TEST_CASE("masked tokens are never drawn") {
  const float neg_inf = -std::numeric_limits<float>::infinity();
  const std::vector<float> logits = {neg_inf, 0.0f, neg_inf, 0.0f};
  CHECK(survivors(logits, SamplingParams{}) == std::vector<std::int32_t>{1, 3});
  const std::vector<double> frequencies = sample_frequencies(logits, SamplingParams{}, 5, 2000);
  CHECK(frequencies[0] == 0.0);
  CHECK(frequencies[2] == 0.0);
}

TEST_CASE("plain sampling follows the softmax") {
  const std::vector<float> logits = logits_from_probs(kProbs);
  SamplingParams params;
  check_distribution(logits, params, {0, 1, 2, 3, 4});
  check_frequencies(logits, params, {0, 1, 2, 3, 4});
}

TEST_CASE("temperature sharpens or flattens before the filters") {
  const std::vector<float> logits = logits_from_probs(kProbs);
  SamplingParams params;
  params.temperature = 2.0f;  // p^(1/2), renormalised
  check_distribution(logits, params, {0, 1, 2, 3, 4});
  check_frequencies(logits, params, {0, 1, 2, 3, 4});
  params.temperature = 0.5f;  // p^2, renormalised
  check_distribution(logits, params, {0, 1, 2, 3, 4});
  check_frequencies(logits, params, {0, 1, 2, 3, 4});

  // top_p = 0.6 keeps {0, 1} at T = 1 (0.4 + 0.3 reaches 0.6), but at T = 2 the
  // flatter {0.300, 0.260, 0.184, 0.150, 0.106} needs three tokens.
  params.top_p = 0.6f;
  params.temperature = 1.0f;
  CHECK(survivors(logits, params) == std::vector<std::int32_t>{0, 1});
  params.temperature = 2.0f;
  CHECK(survivors(logits, params) == std::vector<std::int32_t>{0, 1, 2});
}

TEST_CASE("top-k keeps the k most likely tokens, lowest id on ties") {
  const std::vector<float> logits = logits_from_probs(kProbs);
  SamplingParams params;
  params.top_k = 2;
  check_distribution(logits, params, {0, 1});
  check_frequencies(logits, params, {0, 1});
  params.top_k = 5;
  CHECK(survivors(logits, params).size() == 5);
  params.top_k = 100;  // more than the vocabulary: off
  CHECK(survivors(logits, params).size() == 5);
  params.top_k = -1;
  CHECK(survivors(logits, params).size() == 5);

  params.top_k = 2;
  CHECK(survivors({1.0f, 2.0f, 2.0f, 2.0f}, params) == std::vector<std::int32_t>{1, 2});
  params.top_k = 1;
  CHECK(survivors({1.0f, 2.0f, 0.0f, 2.0f}, params) == std::vector<std::int32_t>{1});
}

TEST_CASE("top-p keeps the shortest prefix whose mass reaches p") {
  const std::vector<float> logits = logits_from_probs(kProbs);
  SamplingParams params;
  params.top_p = 0.3f;  // 0.4 alone reaches it
  CHECK(survivors(logits, params) == std::vector<std::int32_t>{0});
  params.top_p = 0.5f;  // 0.4 + 0.3
  check_distribution(logits, params, {0, 1});
  params.top_p = 0.75f;  // 0.4 + 0.3 + 0.15
  check_distribution(logits, params, {0, 1, 2});
  check_frequencies(logits, params, {0, 1, 2});
  params.top_p = 0.9f;
  CHECK(survivors(logits, params) == std::vector<std::int32_t>{0, 1, 2, 3});
  params.top_p = 1.0f;
  CHECK(survivors(logits, params).size() == 5);
}

TEST_CASE("top-p works on the distribution that top-k left, renormalised") {
  const std::vector<float> logits = logits_from_probs(kProbs);
  SamplingParams params;
  params.top_p = 0.8f;
  CHECK(survivors(logits, params) == std::vector<std::int32_t>{0, 1, 2});  // 0.7 < 0.8
  // After top-k 3: {0.471, 0.353, 0.176}; 0.471 + 0.353 = 0.824 reaches 0.8.
  params.top_k = 3;
  check_distribution(logits, params, {0, 1});
  check_frequencies(logits, params, {0, 1});
}

TEST_CASE("min-p drops tokens below min_p times the top probability") {
  const std::vector<float> logits = logits_from_probs(kProbs);
  SamplingParams params;
  params.min_p = 0.3f;  // threshold 0.12: 0.15 stays, 0.1 goes
  check_distribution(logits, params, {0, 1, 2});
  check_frequencies(logits, params, {0, 1, 2});
  params.min_p = 0.5f;  // threshold 0.2
  CHECK(survivors(logits, params) == std::vector<std::int32_t>{0, 1});
  params.min_p = 1.0f;  // only the top token
  CHECK(survivors(logits, params) == std::vector<std::int32_t>{0});
  // Relative to the top probability after temperature: at T = 2 the ratio of token
  // 3 to token 0 is sqrt(0.1 / 0.4) = 0.5.
  params.temperature = 2.0f;
  params.min_p = 0.45f;
  CHECK(survivors(logits, params) == std::vector<std::int32_t>{0, 1, 2, 3});
}

TEST_CASE("min-p applies after top-p") {
  const std::vector<float> logits = logits_from_probs(kProbs);
  SamplingParams params;
  params.top_p = 0.9f;  // {0, 1, 2, 3}
  params.min_p = 0.3f;  // then drops 3
  check_distribution(logits, params, {0, 1, 2});
  params.top_k = 2;  // and all three together
  check_distribution(logits, params, {0, 1});
}

TEST_CASE("the filters and the draw see the penalised logits") {
  const std::vector<float> logits = logits_from_probs({0.5, 0.3, 0.2});
  TokenHistory history;
  history.append(0);
  history.append(0);
  SamplingParams params;
  params.frequency_penalty = 1.0f;  // token 0 loses 2 nats: 0.5 e^-2 = 0.068
  params.top_k = 2;
  Sampler sampler;
  const auto actual = as_map(sampler.distribution(logits, params, history));
  CHECK(actual.size() == 2);
  CHECK(actual.at(1) == doctest::Approx(0.6));
  CHECK(actual.at(2) == doctest::Approx(0.4));

  params.temperature = 0.0f;
  Rng rng(3);
  CHECK(sampler.sample(logits, params, history, rng).token == 1);
}
