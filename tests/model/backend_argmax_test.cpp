// The backend's greedy argmax (used instead of moving logits when a request is greedy
// without penalties or log-probs) chooses exactly the sampler's greedy token.
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <vector>

#include "common/status.h"
#include "kernels/cpu/cpu_backend.h"
#include "worker/sampling/sampler.h"

using namespace conveyor;

TEST_CASE("CPU backend argmax equals the sampler's greedy choice, row by row") {
  std::mt19937 rng(std::random_device{}());
  std::uniform_real_distribution<float> value(-5.0f, 5.0f);
  CpuBackend backend(CpuBackendOptions{1, std::nullopt, false});
  const std::int64_t vocab = 257;
  const std::int64_t rows = 400;
  std::vector<float> logits(static_cast<std::size_t>(rows * vocab));
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t i = 0; i < vocab; ++i) {
      float v = value(rng);
      // Few distinct values make ties; some NaN, -inf and +inf entries, and whole rows
      // of them.
      if (r % 3 == 0) v = std::round(v);
      const auto roll = rng() % 100;
      if (roll == 0) v = std::nanf("");
      if (roll == 1) v = -INFINITY;
      if (roll == 2 && r % 5 == 0) v = INFINITY;
      if (r % 50 == 7) v = rng() % 2 == 0 ? -INFINITY : std::nanf("");
      logits[static_cast<std::size_t>(r * vocab + i)] = v;
    }
  }
  std::vector<std::int32_t> chosen(static_cast<std::size_t>(rows));
  backend.argmax(logits.data(), rows, vocab, chosen.data());
  Sampler sampler;
  SamplingParams greedy;
  greedy.temperature = 0;
  const TokenHistory history;
  for (std::int64_t r = 0; r < rows; ++r) {
    CAPTURE(r);
    const std::span<const float> row(logits.data() + r * vocab, static_cast<std::size_t>(vocab));
    Rng draw(1);
    std::int32_t expected = -1;
    try {
      expected = sampler.sample(row, greedy, history, draw).token;
    } catch (const Error&) {
      expected = -1;  // nothing to sample
    }
    CHECK(chosen[static_cast<std::size_t>(r)] == expected);
  }
}
