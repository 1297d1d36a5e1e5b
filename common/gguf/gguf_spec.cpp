#include "common/gguf/gguf_spec.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "common/dequantize.h"

namespace conveyor {
namespace {

// Some converters store per-layer hyperparameters as arrays (one entry per block).
// Conveyor's single block implementation needs them uniform.
std::optional<std::int64_t> uniform_int(const GgufMetadata& meta, const std::string& key) {
  const GgufValue* v = meta.find(key);
  if (v == nullptr) return std::nullopt;
  if (v->type != GgufValueType::kArray) return meta.get_int(key);
  const auto values = meta.get_int_array(key).value();
  if (values.empty()) fail(ErrorCode::kMalformed, "metadata key '" + key + "' is an empty array");
  for (auto x : values) {
    if (x != values.front()) {
      fail(ErrorCode::kUnsupported,
           "metadata key '" + key + "' differs between layers; only uniform layers are supported");
    }
  }
  return values.front();
}

std::int64_t require_uniform_int(const GgufMetadata& meta, const std::string& key) {
  const auto v = uniform_int(meta, key);
  if (!v) fail(ErrorCode::kNotFound, "required metadata key '" + key + "' is missing");
  return *v;
}

void read_rope_scaling(const GgufMetadata& meta, const std::string& arch, ModelSpec& s) {
  const std::string prefix = arch + ".rope.scaling.";
  const auto type = meta.get_string(prefix + "type");
  const auto factor = meta.get_float(prefix + "factor");
  // Older conversions wrote only a linear scale.
  const auto legacy_linear = meta.get_float(arch + ".rope.scale_linear");
  if (!type || *type == "none") {
    if (legacy_linear && *legacy_linear != 1.0) {
      s.rope_scaling.type = RopeScalingType::kLinear;
      s.rope_scaling.factor = *legacy_linear;
    }
  } else if (*type == "linear") {
    if (!factor) fail(ErrorCode::kNotFound, "linear rope scaling needs " + prefix + "factor");
    s.rope_scaling.type = RopeScalingType::kLinear;
    s.rope_scaling.factor = *factor;
  } else {
    fail(ErrorCode::kUnsupported,
         "rope scaling type '" + std::string(*type) + "' is not supported (none and linear are)");
  }
  if (const auto original = meta.get_int(prefix + "original_context_length")) {
    s.rope_scaling.original_max_positions = *original;
  }
}

// llama3-style scaling as llama.cpp stores it: one divisor per rotary frequency.
void read_rope_freq_factors(const GgufFile& file, ModelSpec& s) {
  const GgufTensorInfo* info = file.find_tensor("rope_freqs.weight");
  if (info == nullptr) return;
  if (s.head_dim <= 0 || info->elements() != s.head_dim / 2) {
    fail(ErrorCode::kMalformed,
         "rope_freqs.weight has " + std::to_string(info->elements()) +
             " elements, expected head_dim / 2 = " + std::to_string(s.head_dim / 2));
  }
  s.rope_freq_factors = dequantize_tensor(file.tensor_ref(*info));
  for (float f : s.rope_freq_factors) {
    if (!std::isfinite(f) || f <= 0) {
      fail(ErrorCode::kMalformed, "rope_freqs.weight holds a factor that is not a positive number");
    }
  }
}

}  // namespace

ModelSpec gguf_model_spec(const GgufFile& file) {
  const GgufMetadata& meta = file.metadata();
  ModelSpec s;
  const std::string arch(meta.require_string("general.architecture"));
  if (arch == "llama" || arch == "mistral") {
    // convert_hf_to_gguf.py permutes q/k rows of these so that RoPE rotates adjacent pairs.
    s.rope_pairing = RopePairing::kInterleaved;
  } else if (arch == "qwen2") {
    s.rope_pairing = RopePairing::kHalfSplit;  // NEOX-style RoPE, rows as in the checkpoint
  } else {
    fail(ErrorCode::kUnsupported,
         "architecture '" + arch + "' is not supported (llama, mistral and qwen2 are)");
  }
  s.architecture = arch;
  if (const auto name = meta.get_string("general.name")) s.name = std::string(*name);

  const auto key = [&](const char* suffix) { return arch + "." + suffix; };
  s.num_layers = meta.require_int(key("block_count"));
  s.hidden_size = meta.require_int(key("embedding_length"));
  s.intermediate_size = require_uniform_int(meta, key("feed_forward_length"));
  s.num_heads = require_uniform_int(meta, key("attention.head_count"));
  s.num_kv_heads = uniform_int(meta, key("attention.head_count_kv")).value_or(s.num_heads);
  s.rms_norm_eps = meta.require_float(key("attention.layer_norm_rms_epsilon"));
  s.rope_theta = meta.get_float(key("rope.freq_base")).value_or(10000.0);
  s.max_positions = meta.get_int(key("context_length")).value_or(0);
  s.sliding_window = meta.get_int(key("attention.sliding_window")).value_or(0);

  if (s.num_heads <= 0) {
    fail(ErrorCode::kMalformed, key("attention.head_count") + " must be positive");
  }
  if (const auto key_length = meta.get_int(key("attention.key_length"))) {
    s.head_dim = *key_length;
  } else {
    s.head_dim = s.hidden_size / s.num_heads;
  }
  if (const auto value_length = meta.get_int(key("attention.value_length"));
      value_length && *value_length != s.head_dim) {
    fail(ErrorCode::kUnsupported, "attention.value_length " + std::to_string(*value_length) +
                                      " differs from the key length " + std::to_string(s.head_dim));
  }
  read_rope_scaling(meta, arch, s);

  // The embedding matrix is the ground truth for what ids the weights can embed.
  const GgufTensorInfo* embd = file.find_tensor("token_embd.weight");
  const GgufValue* tokens = meta.find("tokenizer.ggml.tokens");
  if (const auto vocab = meta.get_int(key("vocab_size"))) {
    s.vocab_size = *vocab;
  } else if (embd != nullptr && embd->n_dims == 2) {
    s.vocab_size = embd->ne[1];
  } else if (tokens != nullptr && tokens->type == GgufValueType::kArray) {
    s.vocab_size = static_cast<std::int64_t>(tokens->count);
  }

  s.qkv_bias = file.find_tensor("blk.0.attn_q.bias") != nullptr;
  s.tie_embeddings = file.find_tensor("output.weight") == nullptr;
  validate_model_spec(s);  // before anything below trusts head_dim or vocab_size
  if (const auto rot = meta.get_int(key("rope.dimension_count")); rot && *rot != s.head_dim) {
    fail(ErrorCode::kUnsupported, "partial rotary embedding (rope.dimension_count " +
                                      std::to_string(*rot) + " of head_dim " +
                                      std::to_string(s.head_dim) + ") is not supported");
  }
  read_rope_freq_factors(file, s);

  s.bos_token_id = meta.get_token_id("tokenizer.ggml.bos_token_id", s.vocab_size);
  s.pad_token_id = meta.get_token_id("tokenizer.ggml.padding_token_id", s.vocab_size);
  for (const char* k : {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id",
                        "tokenizer.ggml.eom_token_id"}) {
    const std::int64_t id = meta.get_token_id(k, s.vocab_size);
    if (id >= 0 &&
        std::find(s.eos_token_ids.begin(), s.eos_token_ids.end(), id) == s.eos_token_ids.end()) {
      s.eos_token_ids.push_back(id);
    }
  }
  return s;
}

}  // namespace conveyor
