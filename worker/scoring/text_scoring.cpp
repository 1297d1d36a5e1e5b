#include "worker/scoring/text_scoring.h"

#include <algorithm>
#include <string>

#include "common/status.h"

namespace conveyor {

std::vector<TokenWindow> cut_windows(std::int64_t tokens, std::int64_t window) {
  if (window < 2) {
    fail(ErrorCode::kInvalidArgument,
         "a window of " + std::to_string(window) + " tokens predicts nothing: it needs 2 or more");
  }
  if (tokens < 0) fail(ErrorCode::kInvalidArgument, "cut_windows: a negative token count");
  std::vector<TokenWindow> windows;
  for (std::int64_t begin = 0; tokens - begin >= 2; begin += window)
    windows.push_back({begin, std::min(window, tokens - begin)});
  return windows;
}

std::int64_t predicted_tokens(std::span<const TokenWindow> windows) {
  std::int64_t total = 0;
  for (const TokenWindow& w : windows)
    total += w.size - 1;
  return total;
}

void score_windows(std::span<const std::int32_t> tokens, std::span<const TokenWindow> windows,
                   TokenScorer& model, TokenScorer* reference,
                   const PredictionCallback& on_prediction, const WindowCallback& on_window) {
  const std::int64_t vocab = model.spec().vocab_size;
  if (reference != nullptr && reference->spec().vocab_size != vocab) {
    fail(ErrorCode::kInvalidArgument,
         "the reference has " + std::to_string(reference->spec().vocab_size) +
             " tokens in its vocabulary, the model " + std::to_string(vocab));
  }
  const std::int64_t longest =
      std::min(model.window(), reference ? reference->window() : model.window());
  const std::int64_t chunk =
      std::min(model.chunk(), reference ? reference->chunk() : model.chunk());
  const auto text_size = static_cast<std::int64_t>(tokens.size());
  std::int64_t done = 0;
  for (const TokenWindow& w : windows) {
    if (w.begin < 0 || w.size < 1 || w.size > longest || w.begin + w.size > text_size) {
      fail(ErrorCode::kInvalidArgument, "score_windows: a window of " + std::to_string(w.size) +
                                            " tokens at " + std::to_string(w.begin) +
                                            " does not fit the text or the scorer");
    }
    // Inputs are the window's tokens but its last; input i predicts token i + 1.
    const std::int64_t inputs = w.size - 1;
    for (std::int64_t start = 0; start < inputs; start += chunk) {
      const std::int64_t n = std::min(chunk, inputs - start);
      const auto chunk_tokens =
          tokens.subspan(static_cast<std::size_t>(w.begin + start), static_cast<std::size_t>(n));
      const std::span<const float> logits = model.run(chunk_tokens, start);
      const std::span<const float> reference_logits =
          reference ? reference->run(chunk_tokens, start) : std::span<const float>();
      for (std::int64_t r = 0; r < n; ++r) {
        Prediction p;
        p.index = w.begin + start + r + 1;
        p.target = tokens[static_cast<std::size_t>(p.index)];
        if (p.target < 0 || p.target >= vocab) {
          fail(ErrorCode::kInvalidArgument, "token " + std::to_string(p.target) + " at " +
                                                std::to_string(p.index) +
                                                " is outside the model's vocabulary");
        }
        const auto row = static_cast<std::size_t>(r * vocab);
        p.logits = logits.subspan(row, static_cast<std::size_t>(vocab));
        if (reference) p.reference = reference_logits.subspan(row, static_cast<std::size_t>(vocab));
        on_prediction(p);
      }
    }
    ++done;
    if (on_window) on_window(done);
  }
}

}  // namespace conveyor
