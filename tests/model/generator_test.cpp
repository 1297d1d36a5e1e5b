// The batched generator loop: batching, chunked prefill and preemption must not
// change what a sequence generates; stop conditions and errors behave as documented.
#include <doctest/doctest.h>

#include "tests/model/model_fixture.h"
#include "worker/generator.h"

using namespace conveyor;
using namespace conveyor::testing;

namespace {

std::vector<GenerationRequest> greedy_requests(const std::vector<ReferenceCase>& cases,
                                               std::int32_t max_tokens = 16) {
  std::vector<GenerationRequest> requests;
  for (const ReferenceCase& c : cases) {
    GenerationRequest r;
    r.prompt = c.input_ids;
    r.params.temperature = 0;
    r.params.max_tokens = max_tokens;
    r.params.ignore_eos = true;
    requests.push_back(r);
  }
  return requests;
}

}  // namespace

TEST_CASE("greedy continuations decoded through the KV cache match transformers") {
  for (const char* name : {"llama-tiny", "llama-tiny-tied", "llama3-tiny-ropescaling", "qwen2-tiny",
                           "mistral-tiny-swa"}) {
    CAPTURE(name);
    const auto cases = load_reference(name);
    LoadedModel m = load_model(hf_tiny_dir(name));
    Generator generator(*m.model, nullptr);
    const auto requests = greedy_requests(cases);
    // Alone: one prefill step, then one decode step per further token.
    for (std::size_t i = 0; i < cases.size(); ++i) {
      const auto alone = generator.run(std::span<const GenerationRequest>(&requests[i], 1));
      CHECK(alone[0].tokens == cases[i].greedy_new_tokens);
      CHECK(generator.stats().steps == 16);
    }
    // Together: still one forward call per step for the whole batch.
    const auto results = generator.run(requests);
    REQUIRE(results.size() == cases.size());
    for (std::size_t i = 0; i < cases.size(); ++i) {
      CHECK(results[i].tokens == cases[i].greedy_new_tokens);
      CHECK(results[i].finish_reason == FinishReason::kLength);
      CHECK(results[i].prompt_tokens == static_cast<std::int64_t>(cases[i].input_ids.size()));
    }
    CHECK(generator.stats().steps == 16);
    CHECK(generator.stats().prompt_tokens == 5 + 24 + 40);
    CHECK(generator.stats().generated_tokens == 3 * 16);
    CHECK(m.cache->free_blocks() == m.cache->config().num_blocks);  // all returned
  }
}

TEST_CASE("chunked prefill and a small step budget give the same tokens") {
  const auto cases = load_reference("llama-tiny");
  LoadedModel m = load_model(hf_tiny_dir("llama-tiny"));
  GeneratorOptions options;
  options.max_step_tokens = 7;
  Generator generator(*m.model, nullptr, options);
  const auto results = generator.run(greedy_requests(cases));
  for (std::size_t i = 0; i < cases.size(); ++i)
    CHECK(results[i].tokens == cases[i].greedy_new_tokens);
  CHECK(generator.stats().steps > 16);
  CHECK(generator.stats().prompt_tokens == 5 + 24 + 40);  // chunking prefills nothing twice
}

TEST_CASE("preemption by recompute under KV pressure loses nothing") {
  const auto cases = load_reference("llama-tiny");
  // Prompts of 5, 24 and 40 tokens plus 16 new ones need 2, 3 and 4 blocks of 16;
  // with 4 blocks in all, growing sequences preempt the newest, which is recomputed.
  LoadedModel m = load_model(hf_tiny_dir("llama-tiny"), 2, 16, 4);
  Generator generator(*m.model, nullptr);
  const auto results = generator.run(greedy_requests(cases));
  for (std::size_t i = 0; i < cases.size(); ++i)
    CHECK(results[i].tokens == cases[i].greedy_new_tokens);
  CHECK(generator.stats().preemptions > 0);
  CHECK(generator.stats().prompt_tokens > 5 + 24 + 40);  // the recomputed ones again
  CHECK(m.cache->free_blocks() == 4);
}

TEST_CASE("a seeded sampled sequence does not depend on its batch") {
  const auto cases = load_reference("llama-tiny");
  auto sampled = [](const ReferenceCase& c, std::uint64_t seed) {
    GenerationRequest r;
    r.prompt = c.input_ids;
    r.params.temperature = 0.9f;
    r.params.top_k = 50;
    r.params.top_p = 0.95f;
    r.params.max_tokens = 12;
    r.params.ignore_eos = true;
    r.params.seed = seed;
    return r;
  };
  LoadedModel m = load_model(hf_tiny_dir("llama-tiny"));
  Generator generator(*m.model, nullptr);
  const std::vector<GenerationRequest> alone = {sampled(cases[2], 42)};
  const std::vector<GenerationRequest> batch = {sampled(cases[0], 1), sampled(cases[2], 42),
                                                sampled(cases[1], 7)};
  const auto a = generator.run(alone);
  const auto b = generator.run(batch);
  const auto c = generator.run(alone);
  CHECK(a[0].tokens == b[1].tokens);
  CHECK(a[0].tokens == c[0].tokens);
  const std::vector<GenerationRequest> other_seed = {sampled(cases[2], 43)};
  CHECK(generator.run(other_seed)[0].tokens != a[0].tokens);
}

TEST_CASE("stop tokens end a sequence and log-probs come with every token") {
  const auto cases = load_reference("llama-tiny");
  LoadedModel m = load_model(hf_tiny_dir("llama-tiny"));
  Generator generator(*m.model, nullptr);
  auto requests = greedy_requests(cases);
  const std::int32_t stop = cases[0].greedy_new_tokens[3];
  requests[0].params.stop_token_ids = {stop};
  requests[0].params.logprobs = true;
  requests[0].params.top_logprobs = 5;
  const auto results = generator.run(requests);
  const auto& r = results[0];
  CHECK(r.finish_reason == FinishReason::kStop);
  REQUIRE(!r.tokens.empty());
  CHECK(r.tokens.back() == stop);
  CHECK(r.tokens.size() <= 4);
  REQUIRE(r.logprobs.size() == r.tokens.size());
  for (std::size_t i = 0; i < r.tokens.size(); ++i) {
    REQUIRE(r.logprobs[i].top_logprobs.size() == 5);
    // Greedy: the chosen token is the most likely one.
    CHECK(r.logprobs[i].top_logprobs[0].token == r.tokens[i]);
    CHECK(*r.logprobs[i].logprob == doctest::Approx(r.logprobs[i].top_logprobs[0].logprob));
    CHECK(*r.logprobs[i].logprob <= 0.0f);
  }
}

TEST_CASE("a request that cannot run is refused alone; the others run") {
  const auto cases = load_reference("llama-tiny");
  LoadedModel m = load_model(hf_tiny_dir("llama-tiny"), 2, 16, 4);
  Generator generator(*m.model, nullptr);
  const GenerationRequest good = greedy_requests(cases)[0];
  std::vector<std::pair<GenerationRequest, std::string>> bad;
  GenerationRequest r;
  r.params.temperature = 0;
  bad.emplace_back(r, "empty prompt");
  r.prompt = {5, 400};
  bad.emplace_back(r, "outside the vocabulary");
  r.prompt.assign(600, 5);  // the fixtures' context is 512
  bad.emplace_back(r, "context");
  r.prompt.assign(40, 5);
  r.params.max_tokens = 100;  // 140 tokens > 4 blocks of 16
  bad.emplace_back(r, "KV cache");
  r.params.max_tokens = 4;
  r.params.top_p = 0;
  bad.emplace_back(r, "top_p");

  std::vector<GenerationRequest> requests = {good};
  for (const auto& [request, words] : bad)
    requests.push_back(request);
  requests.push_back(good);
  const auto results = generator.run(requests);
  CHECK(results.front().status.ok());
  CHECK(results.front().tokens == cases[0].greedy_new_tokens);
  CHECK(results.back().tokens == cases[0].greedy_new_tokens);
  for (std::size_t i = 0; i < bad.size(); ++i) {
    const Status& status = results[i + 1].status;
    CAPTURE(bad[i].second);
    CHECK(status.code() == ErrorCode::kInvalidArgument);
    CHECK_MESSAGE(status.message().find(bad[i].second) != std::string::npos, status.message());
    CHECK(results[i + 1].tokens.empty());
  }
  CHECK(m.cache->free_blocks() == 4);
}
