#include "common/model_spec.h"

#include "common/status.h"

namespace conveyor {
namespace {

constexpr std::int64_t kMaxDim = std::int64_t{1} << 20;    // 1M: far above any real width
constexpr std::int64_t kMaxVocab = std::int64_t{1} << 24;  // 16M tokens
constexpr std::int64_t kMaxLayers = 4096;

void require(bool ok, const std::string& what) {
  if (!ok) fail(ErrorCode::kMalformed, "invalid model spec: " + what);
}

}  // namespace

void validate_model_spec(const ModelSpec& s) {
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
  require(s.rope_theta > 0, "rope_theta must be positive");
  require(s.sliding_window >= 0, "sliding_window must not be negative");
  require(s.max_positions >= 0, "max_positions must not be negative");
  if (s.rope_scaling.type != RopeScalingType::kNone) {
    require(s.rope_scaling.factor > 0, "rope scaling factor must be positive");
  }
  if (s.rope_scaling.type == RopeScalingType::kLlama3) {
    require(s.rope_scaling.original_max_positions > 0,
            "llama3 rope scaling needs original_max_position_embeddings");
    require(s.rope_scaling.high_freq_factor > s.rope_scaling.low_freq_factor,
            "llama3 rope scaling needs high_freq_factor > low_freq_factor");
  }
}

}  // namespace conveyor
