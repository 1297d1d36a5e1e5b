// Scoring a token sequence in windows: the windows a text is cut into, and the
// predictions TokenScorer and score_windows hand out, checked against the logits
// transformers computed for the hf-tiny models (tests/fixtures/hf-tiny).
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "common/status.h"
#include "kernels/cpu/cpu_backend.h"
#include "tests/model/model_fixture.h"
#include "worker/scoring/score_metrics.h"
#include "worker/scoring/text_scoring.h"
#include "worker/scoring/token_scorer.h"

using namespace conveyor;
using namespace conveyor::testing;

namespace {

std::unique_ptr<Backend> cpu_backend() {
  CpuBackendOptions options;
  options.threads = 2;
  return std::make_unique<CpuBackend>(options);
}

std::unique_ptr<ModelSource> open_tiny(const std::string& name) {
  return open_model_source(hf_tiny_dir(name)).value();
}

TokenScorerOptions scorer_options(std::int64_t window, std::int64_t chunk) {
  TokenScorerOptions options;
  options.window = window;
  options.chunk = chunk;
  return options;
}

// Every prediction of one run, copied out of the callback's spans.
struct Recorded {
  std::vector<std::int64_t> index;
  std::vector<std::vector<float>> logits;
  std::vector<std::vector<float>> reference;
};

Recorded record(std::span<const std::int32_t> tokens, std::span<const TokenWindow> windows,
                TokenScorer& model, TokenScorer* reference = nullptr) {
  Recorded r;
  score_windows(tokens, windows, model, reference, [&](const Prediction& p) {
    CHECK(p.target == tokens[static_cast<std::size_t>(p.index)]);
    r.index.push_back(p.index);
    r.logits.emplace_back(p.logits.begin(), p.logits.end());
    r.reference.emplace_back(p.reference.begin(), p.reference.end());
  });
  return r;
}

}  // namespace

TEST_CASE("a text is cut into consecutive windows; a last window of one token is left out") {
  const auto check = [](std::int64_t tokens, std::int64_t window,
                        const std::vector<std::pair<std::int64_t, std::int64_t>>& want) {
    CAPTURE(tokens);
    CAPTURE(window);
    const std::vector<TokenWindow> got = cut_windows(tokens, window);
    REQUIRE(got.size() == want.size());
    for (std::size_t i = 0; i < want.size(); ++i) {
      CHECK(got[i].begin == want[i].first);
      CHECK(got[i].size == want[i].second);
    }
  };
  check(10, 4, {{0, 4}, {4, 4}, {8, 2}});
  check(9, 4, {{0, 4}, {4, 4}});  // token 8 alone predicts nothing
  check(8, 4, {{0, 4}, {4, 4}});
  check(3, 512, {{0, 3}});
  check(1, 512, {});
  check(0, 512, {});
  CHECK(predicted_tokens(cut_windows(10, 4)) == 3 + 3 + 1);
  CHECK(predicted_tokens(cut_windows(2048, 512)) == 2044);
  CHECK_THROWS_AS(cut_windows(10, 1), Error);
  CHECK_THROWS_AS(cut_windows(-1, 4), Error);
}

TEST_CASE("every position's prediction is transformers' next-token distribution") {
  const auto source = open_tiny("llama-tiny");
  const auto backend = cpu_backend();
  const ReferenceCase rc = load_reference("llama-tiny")[2];  // 40 tokens
  const auto n = static_cast<std::int64_t>(rc.input_ids.size());
  // Chunks of 7 split the window unevenly; the K/V of earlier chunks carries over.
  TokenScorer model(*backend, *source, scorer_options(n, 7));
  const std::vector<TokenWindow> windows = cut_windows(n, n);
  const Recorded r = record(rc.input_ids, windows, model);
  REQUIRE(r.index.size() == static_cast<std::size_t>(n - 1));
  PerplexityAccumulator ours;
  PerplexityAccumulator theirs;
  for (std::size_t i = 0; i < r.index.size(); ++i) {
    CHECK(r.index[i] == static_cast<std::int64_t>(i) + 1);
    CHECK(max_abs_error(r.logits[i], rc.logits[i]) < 1e-4f);
    CHECK(r.reference[i].empty());
    const std::int32_t target = rc.input_ids[i + 1];
    ours.add(normalize_logits(r.logits[i]), target);
    theirs.add(normalize_logits(rc.logits[i]), target);
  }
  CHECK(ours.perplexity() == doctest::Approx(theirs.perplexity()).epsilon(1e-5));
}

TEST_CASE("each window starts from an empty context, whatever came before it") {
  const auto source = open_tiny("llama-tiny");
  const auto backend = cpu_backend();
  const ReferenceCase rc = load_reference("llama-tiny")[2];
  TokenScorer model(*backend, *source, scorer_options(16, 5));
  // 40 tokens in windows of 16: [0, 16), [16, 32), [32, 40).
  const std::vector<TokenWindow> windows = cut_windows(40, 16);
  const Recorded all = record(rc.input_ids, windows, model);
  REQUIRE(all.index.size() == 15 + 15 + 7);
  // The second window alone, as a text of its own, gives the same logits.
  const std::vector<std::int32_t> second(rc.input_ids.begin() + 16, rc.input_ids.begin() + 32);
  const std::vector<TokenWindow> alone = cut_windows(16, 16);
  const Recorded separate = record(second, alone, model);
  REQUIRE(separate.index.size() == 15);
  for (std::size_t i = 0; i < 15; ++i) {
    CHECK(all.index[15 + i] == 17 + static_cast<std::int64_t>(i));
    CHECK(max_abs_error(all.logits[15 + i], separate.logits[i]) == 0.0f);
  }
  // The first window's match transformers' (a prefix of the reference case).
  for (std::size_t i = 0; i < 15; ++i)
    CHECK(max_abs_error(all.logits[i], rc.logits[i]) < 1e-4f);
}

TEST_CASE("a reference runs the same positions: KL and top-1 agreement as transformers' give") {
  const auto source = open_tiny("llama-tiny");
  const auto other = open_tiny("llama-tiny-tied");
  const auto backend = cpu_backend();
  const ReferenceCase rc = load_reference("llama-tiny")[2];
  const ReferenceCase rc_other = load_reference("llama-tiny-tied")[2];
  REQUIRE(rc.input_ids == rc_other.input_ids);
  const auto n = static_cast<std::int64_t>(rc.input_ids.size());
  TokenScorer model(*backend, *source, scorer_options(n, 8));
  TokenScorer reference(*backend, *other, scorer_options(n, 8));
  TokenScorer same(*backend, *source, scorer_options(n, 8));
  const std::vector<TokenWindow> windows = cut_windows(n, n);

  DivergenceAccumulator ours;
  DivergenceAccumulator theirs;
  DivergenceAccumulator self;
  const Recorded r = record(rc.input_ids, windows, model, &reference);
  const Recorded s = record(rc.input_ids, windows, model, &same);
  REQUIRE(r.index.size() == static_cast<std::size_t>(n - 1));
  for (std::size_t i = 0; i < r.index.size(); ++i) {
    ours.add(normalize_logits(r.reference[i]), normalize_logits(r.logits[i]));
    theirs.add(normalize_logits(rc_other.logits[i]), normalize_logits(rc.logits[i]));
    self.add(normalize_logits(s.reference[i]), normalize_logits(s.logits[i]));
  }
  CHECK(ours.mean_kl() > 0.01);  // two different random models
  CHECK(ours.mean_kl() == doctest::Approx(theirs.mean_kl()).epsilon(1e-3));
  CHECK(ours.top1_agreement() == theirs.top1_agreement());
  CHECK(self.mean_kl() < 1e-9);
  CHECK(self.top1_agreement() == 1.0);
}

TEST_CASE("the scorer refuses what it cannot run") {
  const auto source = open_tiny("llama-tiny");
  const auto backend = cpu_backend();
  // The context is 512 positions.
  CHECK_THROWS_AS(TokenScorer(*backend, *source, scorer_options(513, 0)), Error);
  CHECK_THROWS_AS(TokenScorer(*backend, *source, scorer_options(0, 0)), Error);
  TokenScorer model(*backend, *source, scorer_options(8, 4));
  CHECK(model.window() == 8);
  CHECK(model.chunk() == 4);
  const std::vector<std::int32_t> four = {5, 6, 7, 8};
  const std::vector<std::int32_t> five = {5, 6, 7, 8, 9};
  CHECK_THROWS_AS(model.run(five, 0), Error);  // more than a chunk
  CHECK(model.run(four, 0).size() == 4 * 320);
  CHECK_THROWS_AS(model.run(four, 2), Error);  // does not continue the window
  CHECK(model.run(four, 4).size() == 4 * 320);
  CHECK_THROWS_AS(model.run(four, 8), Error);  // past the window
  // A window longer than the scorer's, and a token outside the vocabulary.
  const std::vector<std::int32_t> text = {5, 6, 7, 8, 9, 10, 11, 12, 13, 14};
  const std::vector<TokenWindow> too_long = {{0, 10}};
  CHECK_THROWS_AS(score_windows(text, too_long, model, nullptr, [](const Prediction&) {}), Error);
  const std::vector<std::int32_t> outside = {5, 6, 320};
  const std::vector<TokenWindow> window = cut_windows(3, 8);
  CHECK_THROWS_AS(score_windows(outside, window, model, nullptr, [](const Prediction&) {}), Error);
}
