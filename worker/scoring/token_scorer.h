// TokenScorer: one model's next-token logits at every position of a window of tokens,
// for evaluation (perplexity, divergence from a reference) rather than generation. No
// scheduler and no sampling: the window runs from position 0 through the model's own
// paged KV cache, one window at a time, a chunk of positions per forward step, so that
// only a chunk's rows of logits exist at once whatever the window's length (4096
// positions of a 128k vocabulary would be 2 GiB).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "common/model_source.h"
#include "kernels/backend.h"
#include "worker/kv_cache.h"
#include "worker/llama_model.h"
#include "worker/weight_budget.h"

namespace conveyor {

struct TokenScorerOptions {
  std::int64_t window = 512;  // the longest window run(); sizes the KV cache
  std::int64_t chunk = 0;     // positions per forward step; 0: what keeps a chunk's logits
                              // near 64 MiB
  WeightBudget weight_budget{};
};

class TokenScorer {
 public:
  // Loads every layer of `source` (which must outlive the scorer) onto `backend` with
  // f32 K/V for one window. Throws Error(kInvalidArgument) for a window below 1 or
  // beyond the model's context, and what loading throws.
  TokenScorer(Backend& backend, const ModelSource& source, TokenScorerOptions options);
  ~TokenScorer();
  TokenScorer(const TokenScorer&) = delete;
  TokenScorer& operator=(const TokenScorer&) = delete;

  const ModelSpec& spec() const { return model_->spec(); }
  std::int64_t window() const { return window_; }
  std::int64_t chunk() const { return chunk_; }

  // Runs `tokens` at positions start_position, start_position + 1, ... of the current
  // window and returns their logits, f32 [tokens.size(), vocab], valid until the next
  // call. start_position 0 starts a new window; any other must be where the previous
  // call ended. At most chunk() tokens. Throws Error(kInvalidArgument) for a call that
  // breaks these rules or runs past window(), and what LlamaModel::forward throws.
  std::span<const float> run(std::span<const std::int32_t> tokens, std::int64_t start_position);

 private:
  Backend& backend_;
  std::int64_t window_;
  std::int64_t chunk_;
  std::unique_ptr<KvCache> cache_;
  std::unique_ptr<LlamaModel> model_;
  std::vector<std::int32_t> block_table_;  // every block, in order: one window at a time
  std::int64_t next_position_ = 0;
  StepResult last_;
};

}  // namespace conveyor
