#include "common/model_spec.h"

#include <cmath>
#include <limits>

#include "common/status.h"

namespace conveyor {
namespace {

constexpr std::int64_t kMaxDim = std::int64_t{1} << 20;    // 1M: far above any real width
constexpr std::int64_t kMaxVocab = std::int64_t{1} << 24;  // 16M tokens
constexpr std::int64_t kMaxLayers = 4096;

// Positions are 32-bit in the engine's step metadata.
constexpr std::int64_t kMaxPositions = std::numeric_limits<std::int32_t>::max();

bool finite_positive(double v) {
  return std::isfinite(v) && v > 0;
}

}  // namespace

void validate_model_spec(const ModelSpec& s, const std::string& origin) {
  const auto require = [&origin](bool ok, const std::string& what) {
    if (!ok) {
      fail(ErrorCode::kMalformed,
           (origin.empty() ? "" : origin + ": ") + "invalid model spec: " + what);
    }
  };
  require(s.vocab_size > 0 && s.vocab_size <= kMaxVocab, "vocab_size out of range");
  require(s.hidden_size > 0 && s.hidden_size <= kMaxDim, "hidden_size out of range");
  require(s.intermediate_size > 0 && s.intermediate_size <= kMaxDim,
          "intermediate_size out of range");
  require(s.num_layers > 0 && s.num_layers <= kMaxLayers, "num_layers out of range");
  require(s.num_heads > 0 && s.num_heads <= 4096, "num_heads out of range");
  require(s.num_kv_heads > 0 && s.num_kv_heads <= s.num_heads, "num_kv_heads out of range");
  require(s.num_heads % s.num_kv_heads == 0, "num_heads is not a multiple of num_kv_heads");
  require(s.head_dim > 0 && s.head_dim <= 4096 && s.head_dim % 2 == 0,
          "head_dim must be positive and even");
  require(s.rms_norm_eps > 0 && s.rms_norm_eps < 1, "rms_norm_eps out of range");
  require(finite_positive(s.rope_theta), "rope_theta must be finite and positive");
  require(s.sliding_window >= 0, "sliding_window must not be negative");
  require(s.max_positions >= 0 && s.max_positions <= kMaxPositions, "max_positions out of range");
  if (s.rope_scaling.type != RopeScalingType::kNone) {
    require(finite_positive(s.rope_scaling.factor),
            "rope scaling factor must be finite and positive");
  }
  for (float f : s.rope_freq_factors) {
    require(finite_positive(f), "rope frequency factors must be finite and positive");
  }
  const auto token_ok = [&s](std::int64_t id) { return id >= -1 && id < s.vocab_size; };
  require(token_ok(s.bos_token_id), "bos_token_id outside the vocabulary");
  require(token_ok(s.pad_token_id), "pad_token_id outside the vocabulary");
  for (std::int64_t id : s.eos_token_ids) {
    require(id >= 0 && id < s.vocab_size, "eos_token_id outside the vocabulary");
  }
  if (s.rope_scaling.type == RopeScalingType::kLlama3) {
    require(s.rope_scaling.original_max_positions > 0,
            "llama3 rope scaling needs original_max_position_embeddings");
    require(std::isfinite(s.rope_scaling.low_freq_factor) &&
                std::isfinite(s.rope_scaling.high_freq_factor) &&
                s.rope_scaling.high_freq_factor > s.rope_scaling.low_freq_factor,
            "llama3 rope scaling needs high_freq_factor > low_freq_factor");
  }
}

}  // namespace conveyor
