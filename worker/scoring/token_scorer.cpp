#include "worker/scoring/token_scorer.h"

#include <algorithm>
#include <numeric>
#include <string>

#include "common/status.h"
#include "worker/weight_store.h"

namespace conveyor {
namespace {

// A chunk's logits, f32: large enough that the GEMMs see many rows, small enough that
// a large vocabulary does not make them the largest allocation of the run.
constexpr std::int64_t kChunkLogitBytes = std::int64_t{64} << 20;
constexpr std::int64_t kMinChunk = 16;

std::int64_t chunk_for(const TokenScorerOptions& options, const ModelSpec& spec) {
  if (options.chunk > 0) return std::min(options.chunk, options.window);
  const std::int64_t by_bytes = kChunkLogitBytes / (std::max<std::int64_t>(spec.vocab_size, 1) * 4);
  return std::min(std::max(by_bytes, kMinChunk), options.window);
}

}  // namespace

TokenScorer::TokenScorer(Backend& backend, const ModelSource& source, TokenScorerOptions options)
    : backend_(backend), window_(options.window) {
  const ModelSpec& spec = source.spec();
  if (window_ < 1) {
    fail(ErrorCode::kInvalidArgument,
         "a scoring window of " + std::to_string(window_) + " tokens: it needs at least one");
  }
  if (spec.max_positions > 0 && window_ > spec.max_positions) {
    fail(ErrorCode::kInvalidArgument, "a scoring window of " + std::to_string(window_) +
                                          " tokens is longer than the model's context (" +
                                          std::to_string(spec.max_positions) + ")");
  }
  chunk_ = chunk_for(options, spec);
  const LayerRange layers = LayerRange::all(spec);
  // Weights first, as the executor does: on a device, the cache takes what they leave.
  auto weights = std::make_unique<WeightStore>(backend_, source, layers, options.weight_budget);
  KvCacheConfig kv;
  kv.num_layers = layers.size();
  kv.kv_dim = spec.kv_dim();
  kv.num_blocks = (window_ + kv.block_size - 1) / kv.block_size;
  kv.dtype = DType::kF32;  // evaluation measures the model, not a rounding of its K/V
  cache_ = std::make_unique<KvCache>(backend_, kv);
  block_table_.resize(static_cast<std::size_t>(kv.num_blocks));
  std::iota(block_table_.begin(), block_table_.end(), 0);
  model_ = std::make_unique<LlamaModel>(backend_, std::move(weights), *cache_);
}

TokenScorer::~TokenScorer() = default;

std::span<const float> TokenScorer::run(std::span<const std::int32_t> tokens,
                                        std::int64_t start_position) {
  const auto n = static_cast<std::int64_t>(tokens.size());
  if (n < 1 || n > chunk_) {
    fail(ErrorCode::kInvalidArgument, "TokenScorer::run: " + std::to_string(n) +
                                          " tokens; a call takes 1 to " + std::to_string(chunk_));
  }
  if (start_position != 0 && start_position != next_position_) {
    fail(ErrorCode::kInvalidArgument,
         "TokenScorer::run: position " + std::to_string(start_position) +
             " does not continue the window, which is at " + std::to_string(next_position_));
  }
  if (start_position + n > window_) {
    fail(ErrorCode::kInvalidArgument, "TokenScorer::run: positions up to " +
                                          std::to_string(start_position + n) +
                                          " run past the window of " + std::to_string(window_));
  }
  // Positions below start_position hold this window's K/V from the previous calls; a
  // new window simply overwrites the last one's.
  const SequenceStep step{tokens, start_position, block_table_, LogitsWanted::kAll};
  next_position_ = 0;  // until the step has succeeded
  last_ = model_->forward(std::span(&step, 1));
  next_position_ = start_position + n;
  return last_.logits;
}

}  // namespace conveyor
