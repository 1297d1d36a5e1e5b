// The metric math of `conveyor eval` on small hand-made logits, where every answer is
// known in closed form.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "common/status.h"
#include "worker/scoring/score_metrics.h"

using namespace conveyor;

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Logits whose softmax is `probabilities` (up to a constant: log p + 3).
std::vector<float> logits_of(const std::vector<double>& probabilities) {
  std::vector<float> logits;
  for (double p : probabilities)
    logits.push_back(p > 0 ? static_cast<float>(std::log(p) + 3.0) : kNegInf);
  return logits;
}

}  // namespace

TEST_CASE("a uniform distribution has the vocabulary's size as its perplexity") {
  for (const int vocab : {2, 7, 1000, 49152}) {
    CAPTURE(vocab);
    const std::vector<float> logits(static_cast<std::size_t>(vocab), 0.25f);
    const NormalizedLogits n = normalize_logits(logits);
    PerplexityAccumulator perplexity;
    for (std::int32_t target = 0; target < 5; ++target)
      perplexity.add(n, target % vocab);
    CHECK(perplexity.count() == 5);
    CHECK(perplexity.mean_nll() == doctest::Approx(std::log(vocab)).epsilon(1e-12));
    CHECK(perplexity.perplexity() == doctest::Approx(vocab).epsilon(1e-10));
  }
}

TEST_CASE("log-probabilities: log-softmax in double, whatever the logits' offset") {
  const std::vector<double> p = {0.5, 0.25, 0.125, 0.125};
  for (const float offset : {0.0f, -80.0f, 1000.0f}) {
    CAPTURE(offset);
    std::vector<float> logits = logits_of(p);
    for (float& x : logits)
      x += offset;
    const NormalizedLogits n = normalize_logits(logits);
    for (std::int32_t i = 0; i < 4; ++i)
      CHECK(n.log_prob(i) ==
            doctest::Approx(std::log(p[static_cast<std::size_t>(i)])).epsilon(1e-5));
    CHECK(n.argmax == 0);
  }
}

TEST_CASE("perplexity: exp of the mean negative log-likelihood of the tokens that came") {
  const std::vector<float> logits = logits_of({0.5, 0.25, 0.25});
  const NormalizedLogits n = normalize_logits(logits);
  PerplexityAccumulator perplexity;
  perplexity.add(n, 0);  // -log 0.5
  perplexity.add(n, 1);  // -log 0.25
  CHECK(perplexity.mean_nll() ==
        doctest::Approx((std::log(2.0) + std::log(4.0)) / 2).epsilon(1e-6));
  CHECK(perplexity.perplexity() == doctest::Approx(std::sqrt(8.0)).epsilon(1e-6));
  perplexity.add_nll(0.0);
  CHECK(perplexity.count() == 3);
  CHECK(PerplexityAccumulator().perplexity() == 1.0);
}

TEST_CASE("a token the model rules out costs infinitely much") {
  const std::vector<float> logits = {0.0f, kNegInf, std::numeric_limits<float>::quiet_NaN()};
  const NormalizedLogits n = normalize_logits(logits);
  CHECK(n.log_prob(0) == doctest::Approx(0.0));
  CHECK(std::isinf(n.log_prob(1)));
  CHECK(std::isinf(n.log_prob(2)));  // NaN counts as -inf
  PerplexityAccumulator perplexity;
  perplexity.add(n, 1);
  CHECK(std::isinf(perplexity.perplexity()));
}

TEST_CASE("KL of identical distributions is 0") {
  const std::vector<float> a = {1.5f, -2.0f, 0.25f, 7.0f, kNegInf};
  std::vector<float> shifted = a;
  for (float& x : shifted)
    x += 12.0f;  // the same distribution: logits are defined up to a constant
  const NormalizedLogits p = normalize_logits(a);
  CHECK(kl_divergence(p, p) == 0.0);
  CHECK(kl_divergence(p, normalize_logits(shifted)) == doctest::Approx(0.0).epsilon(1e-9));
}

TEST_CASE("KL of a known pair") {
  // KL(p || q) = sum p log(p / q), by hand:
  //   p = (1/2, 1/4, 1/4), q = (1/4, 1/4, 1/2): 1/2 log 2 + 0 + 1/4 log(1/2) = 1/4 log 2.
  const std::vector<float> p_logits = logits_of({0.5, 0.25, 0.25});
  const std::vector<float> q_logits = logits_of({0.25, 0.25, 0.5});
  const NormalizedLogits p = normalize_logits(p_logits);
  const NormalizedLogits q = normalize_logits(q_logits);
  CHECK(kl_divergence(p, q) == doctest::Approx(0.25 * std::log(2.0)).epsilon(1e-6));
  // Asymmetric: KL(q || p) = 1/4 log(1/2) + 0 + 1/2 log 2 = 1/4 log 2 here too, so take
  // a pair where the two directions differ: p = (0.9, 0.1), q = (0.5, 0.5).
  const std::vector<float> r_logits = logits_of({0.9, 0.1});
  const std::vector<float> s_logits = logits_of({0.5, 0.5});
  const NormalizedLogits r = normalize_logits(r_logits);
  const NormalizedLogits s = normalize_logits(s_logits);
  CHECK(kl_divergence(r, s) ==
        doctest::Approx(0.9 * std::log(0.9 / 0.5) + 0.1 * std::log(0.1 / 0.5)).epsilon(1e-6));
  CHECK(kl_divergence(s, r) ==
        doctest::Approx(0.5 * std::log(0.5 / 0.9) + 0.5 * std::log(0.5 / 0.1)).epsilon(1e-6));
}

TEST_CASE("KL: tokens p rules out add nothing; tokens q rules out and p does not are infinite") {
  const std::vector<float> p_logits = logits_of({0.5, 0.5, 0.0});
  const std::vector<float> q_logits = logits_of({0.25, 0.25, 0.5});
  const NormalizedLogits p = normalize_logits(p_logits);
  const NormalizedLogits q = normalize_logits(q_logits);
  CHECK(kl_divergence(p, q) == doctest::Approx(std::log(2.0)).epsilon(1e-6));
  CHECK(std::isinf(kl_divergence(q, p)));
}

TEST_CASE("KL of rows of different lengths is refused") {
  const std::vector<float> a = {0.0f, 1.0f};
  const std::vector<float> b = {0.0f, 1.0f, 2.0f};
  CHECK_THROWS_AS(kl_divergence(normalize_logits(a), normalize_logits(b)), Error);
  CHECK_THROWS_AS(normalize_logits(std::span<const float>()), Error);
}

TEST_CASE("top-1 agreement counts the positions whose argmaxes are the same") {
  const std::vector<float> first = {3.0f, 1.0f, 0.0f};
  const std::vector<float> second = {0.0f, 3.0f, 1.0f};
  const std::vector<float> third = {0.0f, 1.0f, 3.0f};
  const std::vector<float> tie = {2.0f, 2.0f, 0.0f};  // the first of equal maxima: 0
  const NormalizedLogits a = normalize_logits(first);
  const NormalizedLogits b = normalize_logits(second);
  const NormalizedLogits c = normalize_logits(third);
  const NormalizedLogits t = normalize_logits(tie);
  CHECK(t.argmax == 0);
  DivergenceAccumulator divergence;
  CHECK(divergence.top1_agreement() == 0.0);
  divergence.add(a, a);  // agree
  divergence.add(a, b);  // differ
  divergence.add(c, c);  // agree
  divergence.add(t, a);  // agree (0 and 0)
  divergence.add(b, c);  // differ
  CHECK(divergence.count() == 5);
  CHECK(divergence.top1_agreement() == doctest::Approx(3.0 / 5.0));
  const double expected_kl = (kl_divergence(a, b) + kl_divergence(t, a) + kl_divergence(b, c)) / 5;
  CHECK(divergence.mean_kl() == doctest::Approx(expected_kl).epsilon(1e-12));
}
