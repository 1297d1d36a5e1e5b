#include "compress/quality_report.h"

#include <algorithm>
#include <chrono>

#include "common/status.h"
#include "worker/scoring/score_metrics.h"
#include "worker/scoring/text_scoring.h"
#include "worker/scoring/token_scorer.h"

namespace conveyor::compress {

nlohmann::json quality_report(Backend& backend, const ModelSource& source,
                              const ModelSource& compressed, std::span<const std::int32_t> tokens,
                              std::int64_t window) {
  const auto start = std::chrono::steady_clock::now();
  if (source.spec().vocab_size != compressed.spec().vocab_size) {
    fail(ErrorCode::kInvalidArgument, "quality report: the models' vocabularies differ in size");
  }
  window = std::min({window, source.spec().max_positions, compressed.spec().max_positions});
  const std::vector<TokenWindow> windows =
      cut_windows(static_cast<std::int64_t>(tokens.size()), window);
  if (windows.empty()) {
    fail(ErrorCode::kInvalidArgument, "quality report: the text is too short to predict anything");
  }
  TokenScorerOptions options;
  options.window = window;
  TokenScorer reference(backend, source, options);
  TokenScorer model(backend, compressed, options);
  PerplexityAccumulator source_perplexity;
  PerplexityAccumulator perplexity;
  DivergenceAccumulator divergence;
  score_windows(tokens, windows, model, &reference, [&](const Prediction& p) {
    const NormalizedLogits m = normalize_logits(p.logits);
    const NormalizedLogits r = normalize_logits(p.reference);
    perplexity.add(m, p.target);
    source_perplexity.add(r, p.target);
    divergence.add(r, m);
  });
  return {
      {"tokens_scored", perplexity.count()},
      {"windows", windows.size()},
      {"window", window},
      {"perplexity_source", source_perplexity.perplexity()},
      {"perplexity", perplexity.perplexity()},
      {"kl_mean", divergence.mean_kl()},
      {"top1_agreement", divergence.top1_agreement()},
      {"seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()}};
}

}  // namespace conveyor::compress
