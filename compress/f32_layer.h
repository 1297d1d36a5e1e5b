// One Llama block's weights dequantised to f32 (common/dequantize.h): what the
// reference forward computes with and what compression rescales, prunes and quantises.
// Whatever the source stored (GGUF quants, bf16, Conveyor's own formats), the values
// are the ones the engine computes with.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/model_source.h"

namespace conveyor::compress {

struct F32Layer {
  std::int64_t index = 0;
  std::vector<float> attn_norm;               // [hidden]
  std::vector<float> q, k, v;                 // [q_dim | kv_dim, hidden]
  std::vector<float> q_bias, k_bias, v_bias;  // [q_dim | kv_dim]; empty without qkv_bias
  std::vector<float> o;                       // [hidden, q_dim]
  std::vector<float> ffn_norm;                // [hidden]
  std::vector<float> gate, up;                // [ff, hidden]
  std::vector<float> down;                    // [hidden, ff]
};

// "blk.<layer>.<suffix>".
std::string layer_tensor_name(std::int64_t layer, const std::string& suffix);

// Throws what ModelSource::require and dequantize_tensor throw.
F32Layer load_f32_layer(const ModelSource& source, std::int64_t layer);

}  // namespace conveyor::compress
