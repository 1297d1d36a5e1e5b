// Sampling on the GPU (Backend::sample, kernels/cuda/sampling.cu) against its twin, the
// host's Sampler: the same token for every row, across temperatures, top-k, top-p, min-p,
// penalties, greedy rows, ties, masked tokens and many uniforms on one distribution; the
// same failures; and the same tokens from a whole pipeline whichever of the two samples.
// Skipped without a GPU; built everywhere.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <limits>
#include <random>
#include <string>

#include "common/loader/open_model.h"
#include "tests/gpu/cuda_twin.h"
#include "tests/gpu/pipeline_tokens.h"
#include "tests/model/model_fixture.h"
#include "worker/sampling/penalties.h"
#include "worker/sampling/rng.h"
#include "worker/sampling/sample_row.h"
#include "worker/sampling/sampler.h"
#include "worker/sampling/token_history.h"

using namespace conveyor;
using namespace conveyor::testing;

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

// One row to sample: its logits, parameters, history and draw.
struct Case {
  std::string name;
  std::vector<float> logits;
  SamplingParams params;
  TokenHistory history;
  std::uint64_t seed = 0;
  std::uint64_t step = 0;
};

// The host's answer: a token, or the failure code Backend::sample gives for its error.
std::int32_t host_sample(const Case& c) {
  Sampler sampler;
  Rng rng(c.seed);
  rng.set_step(c.step);
  try {
    return sampler.sample(c.logits, c.params, c.history, rng).token;
  } catch (const Error& e) {
    if (e.status().code() == ErrorCode::kOutOfRange) return kSampleBadHistory;
    if (e.status().message().find("+inf") != std::string::npos) return kSampleInfinite;
    return kSampleNothing;
  }
}

// Bit for bit, except that any NaN equals any NaN (the device's arithmetic makes its own).
bool same_values(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i]) && std::isnan(b[i])) continue;
    if (std::memcmp(&a[i], &b[i], sizeof(float)) != 0) return false;
  }
  return true;
}

std::vector<float> normal_logits(std::size_t vocab, float scale) {
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> logits(vocab);
  for (float& x : logits)
    x = normal(rng());
  return logits;
}

TokenHistory some_history(std::size_t vocab) {
  std::vector<std::int32_t> prompt;
  for (int i = 0; i < 40; ++i)
    prompt.push_back(static_cast<std::int32_t>(rng()() % vocab));
  TokenHistory history(prompt);
  for (int i = 0; i < 30; ++i)
    history.append(static_cast<std::int32_t>(rng()() % (vocab / 8 + 1)));  // repeats
  return history;
}

// Parameter sets a data-generation job uses, and the corners of each filter.
std::vector<SamplingParams> parameter_sets() {
  std::vector<SamplingParams> sets;
  auto add = [&sets](float t, std::int32_t k, float p, float min_p, float rep, float presence,
                     float frequency) {
    SamplingParams s;
    s.temperature = t;
    s.top_k = k;
    s.top_p = p;
    s.min_p = min_p;
    s.repetition_penalty = rep;
    s.presence_penalty = presence;
    s.frequency_penalty = frequency;
    sets.push_back(s);
  };
  add(1.0f, 0, 1.0f, 0.0f, 1.0f, 0.0f, 0.0f);    // plain softmax
  add(0.7f, 50, 1.0f, 0.0f, 1.0f, 0.0f, 0.0f);   // top-k
  add(1.0f, 0, 0.9f, 0.0f, 1.0f, 0.0f, 0.0f);    // top-p
  add(1.3f, 40, 0.8f, 0.05f, 1.0f, 0.0f, 0.0f);  // all three
  add(0.8f, 0, 0.95f, 0.0f, 1.3f, 0.5f, 0.3f);   // penalties
  add(1.0f, 0, 1.0f, 0.1f, 1.0f, 0.0f, 0.0f);    // min-p alone
  add(1.0f, 1, 1.0f, 0.0f, 1.0f, 0.0f, 0.0f);    // top-k 1
  add(2.0f, 0, 0.3f, 0.0f, 1.0f, -0.4f, 0.0f);   // hot, narrow top-p, negative presence
  add(0.0f, 0, 1.0f, 0.0f, 1.5f, 0.0f, 0.2f);    // greedy with penalties
  add(0.05f, 5, 0.99f, 0.0f, 1.0f, 0.0f, 0.0f);  // nearly greedy
  return sets;
}

}  // namespace

TEST_CASE("cuda sampling draws the host sampler's token for every row" * doctest::skip(no_gpu())) {
  auto gpu = gpu_backend();
  REQUIRE(gpu->capabilities().sampling);
  std::vector<Case> cases;
  for (const std::size_t vocab : {std::size_t{1000}, std::size_t{49152}, std::size_t{128256}}) {
    for (const SamplingParams& params : parameter_sets()) {
      for (int shape = 0; shape < 4; ++shape) {
        Case c;
        c.params = params;
        c.history = some_history(vocab);
        c.seed = rng()();
        c.step = rng()() % 1000;
        c.logits = normal_logits(vocab, 3.0f);
        if (shape == 1) {
          // Ties: few distinct values, so buckets and cutoffs fall among equal logits.
          for (float& x : c.logits)
            x = std::round(x * 2.0f) / 2.0f;
        } else if (shape == 2) {
          // Masked tokens, a NaN, and fewer candidates than top-k asks for.
          for (std::size_t i = 0; i < vocab; ++i) {
            if (i % 7 != 0) c.logits[i] = -kInf;
          }
          c.logits[3] = std::numeric_limits<float>::quiet_NaN();
          if (c.params.top_k > 0) c.params.top_k = static_cast<std::int32_t>(vocab);
        } else if (shape == 3) {
          // One bucket for the whole vocabulary: every token the same but a few.
          std::fill(c.logits.begin(), c.logits.end(), 0.25f);
          c.logits[vocab / 2] = 0.0f;
          c.logits[vocab / 3] = -0.0f;
        }
        c.name = "vocab " + std::to_string(vocab) + ", shape " + std::to_string(shape);
        cases.push_back(std::move(c));
      }
    }
  }
  // Many draws from one distribution: each uniform's token by inverse CDF.
  for (int i = 0; i < 256; ++i) {
    Case c;
    c.name = "draw " + std::to_string(i);
    c.params.temperature = 0.9f;
    c.params.top_p = 0.97f;
    static const std::vector<float> shared = normal_logits(32000, 2.0f);
    c.logits = shared;
    c.seed = 7;
    c.step = static_cast<std::uint64_t>(i);
    cases.push_back(std::move(c));
  }
  // Failures: nothing to sample, +inf (a draw fails, greedy takes it), a history
  // token outside the vocabulary.
  {
    Case nothing;
    nothing.name = "all -inf";
    nothing.logits.assign(500, -kInf);
    nothing.logits[9] = std::numeric_limits<float>::quiet_NaN();
    cases.push_back(nothing);
    Case infinite;
    infinite.name = "+inf";
    infinite.logits = normal_logits(500, 1.0f);
    infinite.logits[77] = kInf;
    cases.push_back(infinite);
    Case greedy_infinite = infinite;
    greedy_infinite.name = "greedy +inf";
    greedy_infinite.params.temperature = 0.0f;
    cases.push_back(greedy_infinite);
    Case bad = infinite;
    bad.name = "history outside the vocabulary";
    bad.logits[77] = 1.0f;
    bad.params.repetition_penalty = 1.2f;
    bad.history = TokenHistory(std::vector<std::int32_t>{3, 900});
    cases.push_back(bad);
  }

  // Rows of one vocabulary go in one call, as a step's rows do.
  std::size_t mismatches = 0;
  for (std::size_t first = 0; first < cases.size();) {
    std::size_t end = first;
    while (end < cases.size() && cases[end].logits.size() == cases[first].logits.size())
      ++end;
    const std::size_t vocab = cases[first].logits.size();
    std::vector<float> all;
    std::deque<std::vector<std::int32_t>> lists;
    std::vector<SampleRow> rows;
    for (std::size_t i = first; i < end; ++i) {
      all.insert(all.end(), cases[i].logits.begin(), cases[i].logits.end());
      rows.push_back(
          make_sample_row(cases[i].params, cases[i].history, cases[i].seed, cases[i].step, lists));
    }
    auto logits = upload(*gpu, all);
    std::vector<std::int32_t> got(rows.size());
    gpu->sample(logits->floats(), static_cast<std::int64_t>(vocab), rows, got.data());
    const std::vector<float> penalised = download(*gpu, *logits, all.size());
    for (std::size_t i = first; i < end; ++i) {
      const Case& c = cases[i];
      CAPTURE(c.name);
      CAPTURE(c.params.temperature);
      CAPTURE(c.params.top_k);
      CAPTURE(c.params.top_p);
      CAPTURE(c.params.min_p);
      const std::int32_t want = host_sample(c);
      mismatches += got[i - first] != want ? 1 : 0;
      CHECK(got[i - first] == want);
      // The penalties, applied in place, equal the host's bit for bit.
      if (want != kSampleBadHistory) {
        std::vector<float> expected = c.logits;
        apply_penalties(expected, c.params, c.history);
        const auto offset = static_cast<std::ptrdiff_t>((i - first) * vocab);
        const std::vector<float> row(
            penalised.begin() + offset,
            penalised.begin() + offset + static_cast<std::ptrdiff_t>(vocab));
        CHECK(same_values(row, expected));
      }
    }
    first = end;
  }
  MESSAGE("cuda sampling: " << cases.size() - mismatches << " of " << cases.size()
                            << " rows drew the host sampler's token");
}

namespace {

// Tokens a pipeline of `stages` on the GPU generates for `prompts` with sampling `params`.
std::vector<std::vector<std::int32_t>> sampled_tokens(
    const ModelSource& source, const std::vector<std::vector<std::int32_t>>& prompts,
    const SamplingParams& params, std::int64_t stages) {
  LocalPipelineOptions options;
  options.stages = stages;
  options.backend.kind = BackendKind::kCuda;
  options.backend.gpu_memory_fraction = 0.05;
  options.kv = {256, 16};
  return pipeline_tokens(source, prompts, options, params);
}

}  // namespace

TEST_CASE("a pipeline samples the same tokens on the GPU as on the host" *
          doctest::skip(no_gpu())) {
  auto source = open_model_source(hf_tiny_dir("llama-tiny")).value();
  const auto cases = load_reference("llama-tiny");
  std::vector<std::vector<std::int32_t>> prompts;
  for (const ReferenceCase& rc : cases)
    prompts.push_back(rc.input_ids);
  SamplingParams params;
  params.temperature = 0.9f;
  params.top_k = 40;
  params.top_p = 0.95f;
  params.min_p = 0.02f;
  params.repetition_penalty = 1.1f;
  params.frequency_penalty = 0.2f;
  params.max_tokens = 24;
  const auto on_device = sampled_tokens(*source, prompts, params, 1);
  // Two stages: only the one with the output head samples.
  const auto two_stages = sampled_tokens(*source, prompts, params, 2);
  setenv("CONVEYOR_CUDA_SAMPLING", "host", 1);
  const auto on_host = sampled_tokens(*source, prompts, params, 1);
  unsetenv("CONVEYOR_CUDA_SAMPLING");
  CHECK(on_device == on_host);
  CHECK(two_stages == on_host);
}
