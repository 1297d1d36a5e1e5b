// Scoring a tokenised text the way perplexity is usually reported: the text is cut
// into consecutive, non-overlapping windows, each scored on its own from an empty
// context, every token after a window's first predicted from the ones before it in
// that window. A reference model, when given, runs the same windows in step, so that
// both distributions of a position are at hand together (for their divergence)
// without keeping either model's logits for more than a chunk.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "worker/scoring/token_scorer.h"

namespace conveyor {

struct TokenWindow {
  std::int64_t begin = 0;  // index of its first token in the text
  std::int64_t size = 0;   // tokens; it predicts size - 1 of them
};

// Windows of `window` tokens over `tokens` tokens, the last one shorter where the text
// ends. A last window of a single token predicts nothing and is left out. Throws
// Error(kInvalidArgument) for a window below 2 or a negative token count.
std::vector<TokenWindow> cut_windows(std::int64_t tokens, std::int64_t window);

// Tokens predicted over all windows: the sum of their sizes less one each.
std::int64_t predicted_tokens(std::span<const TokenWindow> windows);

// One predicted position.
struct Prediction {
  std::int64_t index = 0;            // the predicted token's index in the text
  std::int32_t target = 0;           // that token
  std::span<const float> logits;     // the model's logits before it, [vocab]
  std::span<const float> reference;  // the reference's, [vocab]; empty without one
};

using PredictionCallback = std::function<void(const Prediction&)>;
// After each window: windows done so far.
using WindowCallback = std::function<void(std::int64_t windows_done)>;

// Runs `windows` of `tokens` through `model` (and `reference`, when not null) and
// calls `on_prediction` once per predicted token, in text order. A window's last
// token is only ever a target, so it is never run. Throws Error(kInvalidArgument) for
// a window outside the text or longer than a scorer's window(), a reference with
// another vocabulary size, a token outside the vocabulary, and what TokenScorer::run
// throws.
void score_windows(std::span<const std::int32_t> tokens, std::span<const TokenWindow> windows,
                   TokenScorer& model, TokenScorer* reference,
                   const PredictionCallback& on_prediction,
                   const WindowCallback& on_window = nullptr);

}  // namespace conveyor
