#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "worker/sampling/logprobs.h"
#include "worker/sampling/sampler.h"

using namespace conveyor;

namespace {

std::vector<float> random_logits(std::size_t vocab, std::uint64_t seed) {
  std::mt19937_64 engine(seed);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::vector<float> logits(vocab);
  for (float& logit : logits)
    logit = normal(engine);
  return logits;
}

// log-softmax in double, computed the textbook way.
std::vector<double> reference_log_softmax(const std::vector<float>& logits) {
  double max_logit = -std::numeric_limits<double>::infinity();
  for (float x : logits)
    max_logit = std::max(max_logit, static_cast<double>(x));
  double sum = 0.0;
  for (float x : logits)
    sum += std::exp(static_cast<double>(x) - max_logit);
  std::vector<double> out;
  for (float x : logits)
    out.push_back(static_cast<double>(x) - max_logit - std::log(sum));
  return out;
}

}  // namespace

TEST_CASE("the chosen token's log-prob is the raw log-softmax, not the sampling one") {
  const std::vector<float> logits = random_logits(1000, 3);
  const std::vector<double> expected = reference_log_softmax(logits);
  SamplingParams params;
  params.logprobs = true;
  // Penalties and temperature shape the draw but not the reported log-prob.
  params.temperature = 0.5f;
  params.repetition_penalty = 1.5f;
  params.top_k = 50;
  TokenHistory history;
  Sampler sampler;
  Rng rng(11);
  for (int i = 0; i < 20; ++i) {
    const SampleResult result = sampler.sample(logits, params, history, rng);
    REQUIRE(result.logprob.has_value());
    CHECK(*result.logprob ==
          doctest::Approx(expected[static_cast<std::size_t>(result.token)]).epsilon(1e-6));
    CHECK(result.top_logprobs.empty());
    history.append(result.token);
  }
}

TEST_CASE("no log-probs unless asked") {
  Sampler sampler;
  Rng rng(1);
  const SampleResult result =
      sampler.sample(std::vector<float>{1.0f, 2.0f}, SamplingParams{}, TokenHistory{}, rng);
  CHECK(!result.logprob.has_value());
  CHECK(result.top_logprobs.empty());
}

TEST_CASE("top log-probs are sorted, ties by lower id, and match the reference") {
  const std::vector<float> logits = {0.5f, 2.0f, -1.0f, 2.0f, 0.5f, 3.0f};
  const std::vector<double> expected = reference_log_softmax(logits);
  SamplingParams params;
  params.temperature = 0.0f;
  params.logprobs = true;
  params.top_logprobs = 4;
  Sampler sampler;
  Rng rng(1);
  const SampleResult result = sampler.sample(logits, params, TokenHistory{}, rng);
  CHECK(result.token == 5);
  REQUIRE(result.top_logprobs.size() == 4);
  const std::vector<std::int32_t> order = {5, 1, 3, 0};
  for (std::size_t i = 0; i < order.size(); ++i) {
    CHECK(result.top_logprobs[i].token == order[i]);
    CHECK(result.top_logprobs[i].logprob ==
          doctest::Approx(expected[static_cast<std::size_t>(order[i])]).epsilon(1e-6));
  }
}

TEST_CASE("top log-probs beyond 20, up to the whole vocabulary") {
  const std::vector<float> logits = random_logits(5000, 8);
  const std::vector<double> expected = reference_log_softmax(logits);
  std::vector<std::int32_t> ranked(logits.size());
  for (std::size_t i = 0; i < ranked.size(); ++i)
    ranked[i] = static_cast<std::int32_t>(i);
  std::sort(ranked.begin(), ranked.end(), [&](std::int32_t a, std::int32_t b) {
    return ranks_before({logits[static_cast<std::size_t>(a)], a},
                        {logits[static_cast<std::size_t>(b)], b});
  });

  Sampler sampler;
  Rng rng(1);
  SamplingParams params;
  params.logprobs = true;
  for (std::int32_t k : {21, 100, 1000, 5000, 6000}) {
    CAPTURE(k);
    params.top_logprobs = k;
    const SampleResult result = sampler.sample(logits, params, TokenHistory{}, rng);
    const std::size_t want = std::min<std::size_t>(static_cast<std::size_t>(k), logits.size());
    REQUIRE(result.top_logprobs.size() == want);
    for (std::size_t i = 0; i < want; ++i) {
      CHECK(result.top_logprobs[i].token == ranked[i]);
      CHECK(result.top_logprobs[i].logprob ==
            doctest::Approx(expected[static_cast<std::size_t>(ranked[i])]).epsilon(1e-5));
    }
  }
  // The whole vocabulary is a distribution: its probabilities sum to 1.
  params.top_logprobs = 5000;
  const SampleResult all = sampler.sample(logits, params, TokenHistory{}, rng);
  double total = 0.0;
  for (const TokenLogprob& entry : all.top_logprobs)
    total += std::exp(entry.logprob);
  CHECK(total == doctest::Approx(1.0).epsilon(1e-5));
}

TEST_CASE("log_sum_exp handles masks and NaN") {
  const float neg_inf = -std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  CHECK(log_sum_exp(std::vector<float>{0.0f, 0.0f}) == doctest::Approx(std::log(2.0)));
  CHECK(log_sum_exp(std::vector<float>{1.0f, neg_inf, nan}) == doctest::Approx(1.0));
  CHECK(std::isinf(log_sum_exp(std::vector<float>{neg_inf, neg_inf})));
  // Large logits do not overflow.
  CHECK(log_sum_exp(std::vector<float>{1000.0f, 1000.0f}) ==
        doctest::Approx(1000.0 + std::log(2.0)));

  std::vector<ScoredToken> scratch;
  std::vector<TokenLogprob> out;
  top_logprobs(std::vector<float>{nan, 0.0f, neg_inf}, 0.0, 3, scratch, out);
  REQUIRE(out.size() == 3);
  CHECK(out[0].token == 1);
  CHECK(out[1].token == 0);  // NaN ranks as -inf, then ties by id
  CHECK(out[2].token == 2);
  CHECK(std::isinf(out[2].logprob));
}
