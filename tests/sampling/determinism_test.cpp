// Seeds: same seed, same tokens, whatever shares the batch; resumable by step.
#include <doctest/doctest.h>

#include <random>
#include <vector>

#include "worker/sampling/rng.h"
#include "worker/sampling/sampler.h"

using namespace conveyor;

namespace {

std::vector<float> random_logits(std::size_t vocab, std::uint64_t seed) {
  std::mt19937_64 engine(seed);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::vector<float> logits(vocab);
  for (float& logit : logits)
    logit = normal(engine);
  return logits;
}

SamplingParams creative_params() {
  SamplingParams params;
  params.temperature = 0.9f;
  params.top_k = 40;
  params.top_p = 0.95f;
  params.repetition_penalty = 1.1f;
  params.frequency_penalty = 0.2f;
  return params;
}

// A toy decode loop: the "model" returns logits that depend on the step, so the
// sequence of tokens depends on every draw.
struct Sequence {
  Rng rng;
  TokenHistory history;
  SamplingParams params;
  std::vector<std::int32_t> tokens;

  void step(Sampler& sampler) {
    const std::vector<float> logits = random_logits(500, 1000 + tokens.size());
    const std::int32_t token = sampler.sample(logits, params, history, rng).token;
    history.append(token);
    tokens.push_back(token);
  }
};

std::vector<std::int32_t> generate(std::uint64_t seed, int count) {
  Sampler sampler;
  Sequence sequence{Rng(seed), TokenHistory{}, creative_params(), {}};
  for (int i = 0; i < count; ++i)
    sequence.step(sampler);
  return sequence.tokens;
}

}  // namespace

TEST_CASE("the uniform stream is a pure function of seed and step") {
  Rng rng(42);
  for (std::uint64_t step = 0; step < 100; ++step) {
    const double u = rng.next_uniform();
    CHECK(u == Rng::uniform_at(42, step));
    CHECK(u >= 0.0);
    CHECK(u < 1.0);
  }
  CHECK(rng.step() == 100);
  CHECK(Rng::uniform_at(1, 0) != Rng::uniform_at(2, 0));
  CHECK(Rng::bits_at(0, 0) != Rng::bits_at(0, 1));

  // Mean and spread of a uniform on [0, 1).
  double sum = 0.0;
  double sum_squares = 0.0;
  const int n = 100000;
  for (int i = 0; i < n; ++i) {
    const double u = Rng::uniform_at(7, static_cast<std::uint64_t>(i));
    sum += u;
    sum_squares += u * u;
  }
  CHECK(sum / n == doctest::Approx(0.5).epsilon(0.01));
  CHECK(sum_squares / n - (sum / n) * (sum / n) == doctest::Approx(1.0 / 12).epsilon(0.02));
}

TEST_CASE("same seed gives the same tokens; different seeds differ") {
  const std::vector<std::int32_t> first = generate(1234, 200);
  CHECK(generate(1234, 200) == first);
  CHECK(generate(1235, 200) != first);
  CHECK(generate(0, 200) != generate(1, 200));
}

TEST_CASE("a seeded sequence draws the same tokens whatever else is in the batch") {
  const std::vector<std::int32_t> alone = generate(77, 50);

  // The same sequence in a batch with two others, in different orders and with a
  // neighbour that joins late: one shared Sampler, one Rng per sequence.
  Sampler sampler;
  Sequence seeded{Rng(77), TokenHistory{}, creative_params(), {}};
  Sequence other{Rng(5), TokenHistory{}, creative_params(), {}};
  Sequence late{Rng::for_request(std::nullopt), TokenHistory{}, creative_params(), {}};
  other.params.temperature = 1.5f;
  late.params.top_k = 0;
  for (int step = 0; step < 50; ++step) {
    if (step % 2 == 0) {
      other.step(sampler);
      seeded.step(sampler);
    } else {
      seeded.step(sampler);
      other.step(sampler);
    }
    if (step >= 20) late.step(sampler);
  }
  CHECK(seeded.tokens == alone);
}

TEST_CASE("a requeued sequence resumes its stream from the step count") {
  const std::vector<std::int32_t> full = generate(99, 30);

  Sampler sampler;
  Sequence resumed{Rng(99), TokenHistory{}, creative_params(), {}};
  for (int i = 0; i < 10; ++i)
    resumed.step(sampler);
  // A fresh Rng, as a new worker would build it after the first one was lost.
  resumed.rng = Rng(99);
  resumed.rng.set_step(resumed.tokens.size());
  for (int i = 10; i < 30; ++i)
    resumed.step(sampler);
  CHECK(resumed.tokens == full);
}

TEST_CASE("unseeded requests get different seeds") {
  const Rng a = Rng::for_request(std::nullopt);
  const Rng b = Rng::for_request(std::nullopt);
  CHECK(a.seed() != b.seed());
  CHECK(Rng::for_request(std::uint64_t{8}).seed() == 8);
}
