// The step messages' binary form: what is encoded decodes to the same values, and
// what is truncated, corrupted or forged is refused without a crash.
#include "worker/step_codec.h"

#include <doctest/doctest.h>

#include <random>

namespace conveyor {
namespace {

StepPlan random_plan(std::mt19937_64& random) {
  const auto pick = [&](std::int64_t low, std::int64_t high) {
    return std::uniform_int_distribution<std::int64_t>(low, high)(random);
  };
  StepPlan plan;
  plan.step = static_cast<std::uint64_t>(pick(0, 1 << 30));
  for (std::int64_t i = pick(0, 5); i > 0; --i) {
    PlannedSequence s;
    s.id = pick(0, 1000);
    s.start = pick(0, 4000);
    for (std::int64_t t = pick(1, 20); t > 0; --t)
      s.tokens.push_back(static_cast<std::int32_t>(pick(0, 50000)));
    for (std::int64_t b = pick(0, 8); b > 0; --b)
      s.block_table.push_back(static_cast<std::int32_t>(pick(0, 4096)));
    s.samples = pick(0, 1) == 1;
    if (pick(0, 3) == 0) s.context_before = {1, 2, 3};
    if (s.samples) {
      auto sampling = std::make_shared<SequenceSampling>();
      sampling->seed = static_cast<std::uint64_t>(pick(0, INT64_MAX));
      sampling->prompt_tokens = pick(1, 100);
      sampling->params.temperature = static_cast<float>(pick(0, 20)) / 10;
      sampling->params.top_k = static_cast<std::int32_t>(pick(0, 50));
      sampling->params.max_tokens = static_cast<std::int32_t>(pick(1, 500));
      if (pick(0, 1) == 1) sampling->params.seed = 42;
      if (pick(0, 1) == 1) sampling->params.stop_strings = {"\n\n", "END"};
      sampling->params.stop_token_ids = {2, 7};
      sampling->params.logprobs = true;
      sampling->params.top_logprobs = 3;
      s.sampling = sampling;
    }
    plan.sequences.push_back(std::move(s));
  }
  plan.released = {3, 9};
  for (std::int64_t i = pick(0, 3); i > 0; --i) {
    KvSwap swap;
    swap.sequence = pick(0, 1000);
    swap.direction = static_cast<KvSwap::Direction>(pick(1, 3));
    swap.tier = pick(0, 1) == 1 ? KvTierId::kDisk : KvTierId::kHost;
    for (std::int64_t b = pick(1, 8); b > 0; --b)
      swap.blocks.push_back(static_cast<std::int32_t>(pick(0, 4096)));
    plan.swaps.push_back(std::move(swap));
  }
  return plan;
}

void check_same(const StepPlan& a, const StepPlan& b) {
  CHECK(a.step == b.step);
  CHECK(a.released == b.released);
  CHECK(a.swaps == b.swaps);
  REQUIRE(a.sequences.size() == b.sequences.size());
  for (std::size_t i = 0; i < a.sequences.size(); ++i) {
    const PlannedSequence& x = a.sequences[i];
    const PlannedSequence& y = b.sequences[i];
    CHECK(x.id == y.id);
    CHECK(x.start == y.start);
    CHECK(x.samples == y.samples);
    CHECK(x.tokens == y.tokens);
    CHECK(x.block_table == y.block_table);
    CHECK(x.context_before == y.context_before);
    REQUIRE((x.sampling == nullptr) == (y.sampling == nullptr));
    if (!x.sampling) continue;
    CHECK(x.sampling->seed == y.sampling->seed);
    CHECK(x.sampling->prompt_tokens == y.sampling->prompt_tokens);
    const SamplingParams& p = x.sampling->params;
    const SamplingParams& q = y.sampling->params;
    CHECK(p.temperature == q.temperature);
    CHECK(p.top_k == q.top_k);
    CHECK(p.max_tokens == q.max_tokens);
    CHECK(p.seed == q.seed);
    CHECK(p.stop_strings == q.stop_strings);
    CHECK(p.stop_token_ids == q.stop_token_ids);
    CHECK(p.logprobs == q.logprobs);
    CHECK(p.top_logprobs == q.top_logprobs);
  }
}

StepOutput sample_output() {
  StepOutput out;
  out.step = 77;
  SampledToken a;
  a.id = 5;
  a.sample.token = 123;
  a.sample.logprob = -0.25f;
  a.sample.top_logprobs = {{123, -0.25f}, {9, -1.5f}};
  SampledToken b;
  b.id = 6;
  b.status = Status(ErrorCode::kInternal, "sampling: no finite logit");
  out.samples = {a, b};
  return out;
}

TEST_CASE("step plans and outputs decode to what was encoded") {
  std::mt19937_64 random(7);
  for (int i = 0; i < 200; ++i) {
    const StepPlan plan = random_plan(random);
    const Expected<StepPlan> back = decode_step_plan(encode_step_plan(plan));
    REQUIRE(back.ok());
    check_same(plan, *back);
  }
  const StepOutput out = sample_output();
  const Expected<StepOutput> back = decode_step_output(encode_step_output(out));
  REQUIRE(back.ok());
  CHECK(back->step == 77);
  CHECK(back->status.ok());
  REQUIRE(back->samples.size() == 2);
  CHECK(back->samples[0].sample.token == 123);
  CHECK(back->samples[0].sample.logprob == -0.25f);
  CHECK(back->samples[0].sample.top_logprobs.size() == 2);
  CHECK(back->samples[0].sample.top_logprobs[1].token == 9);
  CHECK(back->samples[1].status.code() == ErrorCode::kInternal);
  CHECK(back->samples[1].status.message() == "sampling: no finite logit");
  CHECK_FALSE(back->samples[1].sample.logprob.has_value());

  StepOutput failed;
  failed.step = 3;
  failed.status = Status(ErrorCode::kUnavailable, "stage lost");
  const auto failed_back = decode_step_output(encode_step_output(failed));
  REQUIRE(failed_back.ok());
  CHECK(failed_back->status.code() == ErrorCode::kUnavailable);
}

TEST_CASE("a message cut at any byte is refused") {
  std::mt19937_64 random(11);
  StepPlan plan;
  while (plan.sequences.size() < 3)
    plan = random_plan(random);
  const auto bytes = encode_step_plan(plan);
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    CAPTURE(n);
    const auto cut = decode_step_plan(std::span(bytes).first(n));
    REQUIRE_FALSE(cut.ok());
    CHECK(cut.status().code() == ErrorCode::kMalformed);
  }
  const auto out = encode_step_output(sample_output());
  for (std::size_t n = 0; n < out.size(); ++n)
    CHECK_FALSE(decode_step_output(std::span(out).first(n)).ok());
}

TEST_CASE("corrupted and forged messages are errors, never crashes or huge allocations") {
  std::mt19937_64 random(13);
  const StepPlan plan = random_plan(random);
  const auto bytes = encode_step_plan(plan);
  // Random corruption: decoding either succeeds or reports an error.
  for (int i = 0; i < 20000; ++i) {
    auto mutated = bytes;
    for (int flips = 1 + static_cast<int>(random() % 4); flips > 0; --flips)
      mutated[random() % mutated.size()] = static_cast<std::uint8_t>(random());
    const auto decoded = decode_step_plan(mutated);
    if (!decoded.ok()) CHECK(decoded.status().code() != ErrorCode::kOk);
  }
  // A sequence count of 2^32 - 1 in a short message.
  auto forged = encode_step_plan(StepPlan{});
  forged[15] = forged[16] = forged[17] = forged[18] = 0xff;  // header 7 + step 8: the count
  const auto refused = decode_step_plan(forged);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().message().find("sequences") != std::string::npos);

  auto trailing = bytes;
  trailing.push_back(0);
  CHECK(decode_step_plan(trailing).status().message().find("left after") != std::string::npos);
  auto versioned = bytes;
  versioned[4] = 9;
  CHECK(decode_step_plan(versioned).status().code() == ErrorCode::kUnsupported);
  CHECK_FALSE(decode_step_output(bytes).ok());  // a plan is not an output
}

}  // namespace
}  // namespace conveyor
