#include <doctest/doctest.h>

#include <vector>

#include "common/status.h"
#include "worker/sampling/penalties.h"
#include "worker/sampling/token_history.h"

using namespace conveyor;

TEST_CASE("token history keeps distinct tokens and output counts") {
  const std::vector<std::int32_t> prompt = {5, 3, 5, 7};
  TokenHistory history(prompt);
  history.append(3);
  history.append(9);
  history.append(3);
  CHECK(history.prompt().size() == 4);
  CHECK(history.output().size() == 3);
  CHECK(std::vector<std::int32_t>(history.distinct_tokens().begin(),
                                  history.distinct_tokens().end()) ==
        std::vector<std::int32_t>{5, 3, 7, 9});
  REQUIRE(history.output_counts().size() == 2);
  CHECK(history.output_counts()[0].token == 3);
  CHECK(history.output_counts()[0].count == 2);
  CHECK(history.output_counts()[1].token == 9);
  CHECK(history.output_counts()[1].count == 1);
  CHECK(history.output_count(3) == 2);
  CHECK(history.output_count(5) == 0);  // prompt tokens are not output
}

TEST_CASE("repetition penalty divides positive and multiplies negative logits, once each") {
  std::vector<float> logits = {2.0f, -2.0f, 0.5f, -0.5f, 1.0f, 0.0f};
  const std::vector<std::int32_t> prompt = {0, 1, 0, 0, 5};
  TokenHistory history(prompt);
  history.append(2);
  history.append(2);
  SamplingParams params;
  params.repetition_penalty = 2.0f;
  CHECK(has_penalties(params));
  apply_penalties(logits, params, history);
  CHECK(logits == std::vector<float>{1.0f, -4.0f, 0.25f, -0.5f, 1.0f, 0.0f});
}

TEST_CASE("frequency and presence penalties count output tokens only") {
  std::vector<float> logits = {1.0f, 1.0f, 1.0f, 1.0f, 1.0f};
  const std::vector<std::int32_t> prompt = {4, 1};
  TokenHistory history(prompt);
  for (std::int32_t token : {1, 1, 1, 3})
    history.append(token);
  SamplingParams params;
  params.frequency_penalty = 0.5f;
  params.presence_penalty = 0.25f;
  apply_penalties(logits, params, history);
  CHECK(logits[0] == 1.0f);
  CHECK(logits[1] == doctest::Approx(1.0 - 3 * 0.5 - 0.25));
  CHECK(logits[2] == 1.0f);
  CHECK(logits[3] == doctest::Approx(1.0 - 1 * 0.5 - 0.25));
  CHECK(logits[4] == 1.0f);  // prompt only
}

TEST_CASE("negative presence and frequency penalties encourage repetition") {
  std::vector<float> logits = {0.0f, 0.0f};
  TokenHistory history;
  history.append(1);
  history.append(1);
  SamplingParams params;
  params.frequency_penalty = -1.0f;
  params.presence_penalty = -0.5f;
  apply_penalties(logits, params, history);
  CHECK(logits[1] == doctest::Approx(2.5));
}

TEST_CASE("repetition applies before frequency and presence") {
  std::vector<float> logits = {3.0f, -1.0f};
  TokenHistory history;
  history.append(0);
  history.append(1);
  SamplingParams params;
  params.repetition_penalty = 1.5f;
  params.frequency_penalty = 0.5f;
  params.presence_penalty = 0.5f;
  apply_penalties(logits, params, history);
  CHECK(logits[0] == doctest::Approx(3.0 / 1.5 - 1.0));
  CHECK(logits[1] == doctest::Approx(-1.0 * 1.5 - 1.0));
}

TEST_CASE("default params change nothing") {
  SamplingParams params;
  CHECK(!has_penalties(params));
  std::vector<float> logits = {1.0f, -1.0f};
  TokenHistory history(std::vector<std::int32_t>{0, 1});
  history.append(0);
  apply_penalties(logits, params, history);
  CHECK(logits == std::vector<float>{1.0f, -1.0f});
}

TEST_CASE("a history token outside the vocabulary is an error") {
  std::vector<float> logits = {1.0f, 1.0f};
  TokenHistory history(std::vector<std::int32_t>{0, 2});
  SamplingParams params;
  params.repetition_penalty = 1.2f;
  CHECK_THROWS_AS(apply_penalties(logits, params, history), Error);
  TokenHistory negative;
  negative.append(-1);
  params = {};
  params.presence_penalty = 1.0f;
  CHECK_THROWS_AS(apply_penalties(logits, params, negative), Error);
}
