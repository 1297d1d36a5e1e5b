// ModelSpec: the immutable description of one architecture instance, built from a
// Hugging Face config.json or from GGUF metadata. The block implementation reads
// only this; there is one Llama-family block, parameterised, not one per model.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace conveyor {

// How rotary embedding pairs up the dimensions of a head.
//  kHalfSplit:   (x[i], x[i + d/2]) rotate together. Hugging Face checkpoints.
//  kInterleaved: (x[2i], x[2i+1]) rotate together. GGUF files converted from Llama
//                checkpoints, whose q/k rows were permuted at conversion for it.
enum class RopePairing { kHalfSplit, kInterleaved };

enum class RopeScalingType { kNone, kLinear, kLlama3 };

struct RopeScaling {
  RopeScalingType type = RopeScalingType::kNone;
  double factor = 1.0;
  double low_freq_factor = 1.0;             // llama3
  double high_freq_factor = 4.0;            // llama3
  std::int64_t original_max_positions = 0;  // llama3
};

struct ModelSpec {
  std::string architecture;  // "llama", "mistral", "qwen2"
  std::string name;          // human-readable, from metadata when present

  std::int64_t vocab_size = 0;
  std::int64_t hidden_size = 0;        // n_embd
  std::int64_t intermediate_size = 0;  // n_ff
  std::int64_t num_layers = 0;
  std::int64_t num_heads = 0;
  std::int64_t num_kv_heads = 0;  // == num_heads for MHA
  std::int64_t head_dim = 0;      // usually hidden_size / num_heads
  std::int64_t max_positions = 0;
  double rms_norm_eps = 1e-6;

  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  RopePairing rope_pairing = RopePairing::kHalfSplit;
  // Per-frequency divisors, head_dim / 2 of them, or empty. When present, rotary
  // frequency i is theta^(-2i/head_dim) / rope_freq_factors[i], as llama.cpp applies
  // a GGUF file's rope_freqs.weight (llama3 scaling precomputed at conversion).
  std::vector<float> rope_freq_factors;

  std::int64_t sliding_window = 0;  // 0: full attention
  bool qkv_bias = false;            // Qwen2
  bool tie_embeddings = false;      // output projection shares token_embd

  std::int64_t bos_token_id = -1;
  std::vector<std::int64_t> eos_token_ids;
  std::int64_t pad_token_id = -1;

  std::int64_t q_dim() const { return num_heads * head_dim; }
  std::int64_t kv_dim() const { return num_kv_heads * head_dim; }
};

// Checks the invariants the engine relies on (positive sizes, heads divide evenly,
// head_dim even for RoPE, finite RoPE parameters, special token ids inside the
// vocabulary, sane upper bounds). Throws Error(kMalformed) naming `origin` (the file
// the spec came from, when given) and the offending field.
void validate_model_spec(const ModelSpec& spec, const std::string& origin = "");

}  // namespace conveyor
