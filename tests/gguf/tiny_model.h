// A complete, tiny Llama-family model as a GgufBuilder: every tensor the spec
// implies (f32 zeros), consistent metadata and a small byte-level BPE tokenizer.
// Tests change one thing in it and check what the loader says.
#pragma once

#include <string>

#include "tests/gguf/gguf_builder.h"

namespace conveyor::testing {

struct TinyModelOptions {
  std::string arch = "llama";
  bool qkv_bias = false;
  bool tied = false;
  bool rope_freqs = false;
};

// hidden 8, 2 heads of 4, 1 kv head, ff 16, vocab 12, 2 layers.
inline constexpr std::uint64_t kTinyHidden = 8, kTinyHeads = 2, kTinyKvHeads = 1, kTinyHeadDim = 4,
                               kTinyFf = 16, kTinyVocab = 12, kTinyLayers = 2;

inline GgufBuilder tiny_model(const TinyModelOptions& o = {}) {
  GgufBuilder b;
  const std::string a = o.arch;
  b.kv_string("general.architecture", a);
  b.kv_string("general.name", "tiny");
  b.kv_u32(a + ".block_count", kTinyLayers);
  b.kv_u32(a + ".context_length", 256);
  b.kv_u32(a + ".embedding_length", kTinyHidden);
  b.kv_u32(a + ".feed_forward_length", kTinyFf);
  b.kv_u32(a + ".attention.head_count", kTinyHeads);
  b.kv_u32(a + ".attention.head_count_kv", kTinyKvHeads);
  b.kv_f32(a + ".rope.freq_base", 10000.0f);
  b.kv_f32(a + ".attention.layer_norm_rms_epsilon", 1e-5f);
  b.kv_u32(a + ".rope.dimension_count", kTinyHeadDim);

  b.kv_string("tokenizer.ggml.model", "gpt2");
  b.kv_string("tokenizer.ggml.pre", "smollm");
  b.kv_string_array("tokenizer.ggml.tokens",
                    {"<s>", "</s>", "a", "b", "c", "ab", "bc", "abc", "\xC4\xA0",
                     "\xC4\xA0"
                     "a",
                     "<|im_end|>", "x"});
  b.kv_array<std::int32_t>("tokenizer.ggml.token_type", gguf_t::kI32,
                           {3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 3, 1});
  b.kv_string_array("tokenizer.ggml.merges", {"a b", "b c", "ab c", "\xC4\xA0 a"});
  b.kv_u32("tokenizer.ggml.bos_token_id", 0);
  b.kv_u32("tokenizer.ggml.eos_token_id", 1);
  b.kv_u32("tokenizer.ggml.eot_token_id", 10);
  b.kv_bool("tokenizer.ggml.add_bos_token", true);
  b.kv_string("tokenizer.chat_template", "{{ messages }}");

  const std::uint64_t h = kTinyHidden, q = kTinyHeads * kTinyHeadDim,
                      kv = kTinyKvHeads * kTinyHeadDim;
  b.tensor_f32("token_embd.weight", {kTinyVocab, h}, 0.5f);
  for (std::uint64_t l = 0; l < kTinyLayers; ++l) {
    const std::string blk = "blk." + std::to_string(l) + ".";
    b.tensor_f32(blk + "attn_norm.weight", {h}, 1.0f);
    b.tensor_f32(blk + "attn_q.weight", {q, h});
    b.tensor_f32(blk + "attn_k.weight", {kv, h});
    b.tensor_f32(blk + "attn_v.weight", {kv, h});
    if (o.qkv_bias) {
      b.tensor_f32(blk + "attn_q.bias", {q});
      b.tensor_f32(blk + "attn_k.bias", {kv});
      b.tensor_f32(blk + "attn_v.bias", {kv});
    }
    b.tensor_f32(blk + "attn_output.weight", {h, q});
    b.tensor_f32(blk + "ffn_norm.weight", {h}, 1.0f);
    b.tensor_f32(blk + "ffn_gate.weight", {kTinyFf, h});
    b.tensor_f32(blk + "ffn_up.weight", {kTinyFf, h});
    b.tensor_f32(blk + "ffn_down.weight", {h, kTinyFf});
  }
  b.tensor_f32("output_norm.weight", {h}, 1.0f);
  if (!o.tied) b.tensor_f32("output.weight", {kTinyVocab, h});
  if (o.rope_freqs) b.tensor_f32("rope_freqs.weight", {kTinyHeadDim / 2}, 2.0f);
  return b;
}

}  // namespace conveyor::testing
