#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>

#include "worker/sampling/sampling_params.h"

using namespace conveyor;

namespace {

// Applies `change` to default params and expects validate() to name `field`.
void expect_rejected(const std::function<void(SamplingParams&)>& change, const std::string& field) {
  SamplingParams params;
  change(params);
  const Status status = params.validate();
  CAPTURE(field);
  CAPTURE(status.message());
  CHECK(status.code() == ErrorCode::kInvalidArgument);
  CHECK(status.message().find(field) != std::string::npos);
}

}  // namespace

TEST_CASE("default and typical sampling params are valid") {
  CHECK(SamplingParams{}.validate().ok());
  SamplingParams params;
  params.temperature = 0.0f;
  params.top_k = -1;
  params.top_p = 1.0f;
  params.min_p = 1.0f;
  params.repetition_penalty = 1.3f;
  params.presence_penalty = -2.0f;
  params.frequency_penalty = 2.0f;
  params.seed = 0;
  params.max_tokens = 1;
  params.stop_strings = {"\n\n", "###"};
  params.stop_token_ids = {0, 2};
  params.logprobs = true;
  params.top_logprobs = 1000;  // no cap of 20
  CHECK(params.validate().ok());
  CHECK(params.validate(151936).ok());
  CHECK(params.is_greedy());
}

TEST_CASE("validate rejects each nonsense parameter and names it") {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  expect_rejected([](SamplingParams& p) { p.temperature = -0.1f; }, "temperature");
  expect_rejected([&](SamplingParams& p) { p.temperature = nan; }, "temperature");
  expect_rejected([&](SamplingParams& p) { p.temperature = inf; }, "temperature");
  expect_rejected([](SamplingParams& p) { p.top_k = -2; }, "top_k");
  expect_rejected([](SamplingParams& p) { p.top_p = 0.0f; }, "top_p");
  expect_rejected([](SamplingParams& p) { p.top_p = 1.01f; }, "top_p");
  expect_rejected([&](SamplingParams& p) { p.top_p = nan; }, "top_p");
  expect_rejected([](SamplingParams& p) { p.min_p = -0.01f; }, "min_p");
  expect_rejected([](SamplingParams& p) { p.min_p = 1.5f; }, "min_p");
  expect_rejected([](SamplingParams& p) { p.repetition_penalty = 0.0f; }, "repetition_penalty");
  expect_rejected([](SamplingParams& p) { p.repetition_penalty = -1.0f; }, "repetition_penalty");
  expect_rejected([](SamplingParams& p) { p.repetition_penalty = 11.0f; }, "repetition_penalty");
  expect_rejected([&](SamplingParams& p) { p.repetition_penalty = nan; }, "repetition_penalty");
  expect_rejected([](SamplingParams& p) { p.presence_penalty = 2.5f; }, "presence_penalty");
  expect_rejected([](SamplingParams& p) { p.presence_penalty = -2.5f; }, "presence_penalty");
  expect_rejected([](SamplingParams& p) { p.frequency_penalty = 3.0f; }, "frequency_penalty");
  expect_rejected([&](SamplingParams& p) { p.frequency_penalty = nan; }, "frequency_penalty");
  expect_rejected([](SamplingParams& p) { p.max_tokens = 0; }, "max_tokens");
  expect_rejected([](SamplingParams& p) { p.max_tokens = -5; }, "max_tokens");
  expect_rejected([](SamplingParams& p) { p.stop_strings.assign(kMaxStopStrings + 1, "x"); },
                  "stop_strings");
  expect_rejected([](SamplingParams& p) { p.stop_strings = {"ok", ""}; }, "stop_strings[1]");
  expect_rejected(
      [](SamplingParams& p) { p.stop_strings = {std::string(kMaxStopStringBytes + 1, 'a')}; },
      "stop_strings[0]");
  expect_rejected([](SamplingParams& p) { p.stop_token_ids = {3, -1}; }, "stop_token_ids[1]");
  expect_rejected([](SamplingParams& p) { p.stop_token_ids.assign(kMaxStopTokenIds + 1, 1); },
                  "stop_token_ids");
  expect_rejected(
      [](SamplingParams& p) {
        p.logprobs = true;
        p.top_logprobs = -1;
      },
      "top_logprobs");
  expect_rejected([](SamplingParams& p) { p.top_logprobs = 5; }, "top_logprobs");
}

TEST_CASE("validate with a vocabulary size bounds token ids and top_logprobs") {
  SamplingParams params;
  params.logprobs = true;
  params.top_logprobs = 100;
  CHECK(params.validate(100).ok());
  const Status too_many = params.validate(99);
  CHECK(too_many.code() == ErrorCode::kInvalidArgument);
  CHECK(too_many.message().find("top_logprobs") != std::string::npos);

  params.top_logprobs = 0;
  params.stop_token_ids = {5, 99};
  CHECK(params.validate(100).ok());
  const Status outside = params.validate(99);
  CHECK(outside.code() == ErrorCode::kInvalidArgument);
  CHECK(outside.message().find("stop_token_ids[1]") != std::string::npos);

  CHECK(!SamplingParams{}.validate(0).ok());
  // The vocabulary-free checks still run.
  SamplingParams bad;
  bad.top_p = 2.0f;
  CHECK(bad.validate(100).message().find("top_p") != std::string::npos);
}

TEST_CASE("the message carries the offending value") {
  SamplingParams params;
  params.top_p = 1.5f;
  CHECK(params.validate().message() == "top_p must be in (0, 1], got 1.5");
  params = {};
  params.repetition_penalty = 20.0f;
  CHECK(params.validate().message() == "repetition_penalty must be in (0, 10], got 20");
}
