#include "compress/f32_layer.h"

#include "common/dequantize.h"

namespace conveyor::compress {

std::string layer_tensor_name(std::int64_t layer, const std::string& suffix) {
  return "blk." + std::to_string(layer) + "." + suffix;
}

F32Layer load_f32_layer(const ModelSource& source, std::int64_t layer) {
  auto load = [&](const std::string& suffix) {
    return dequantize_tensor(source.require(layer_tensor_name(layer, suffix)));
  };
  F32Layer w;
  w.index = layer;
  w.attn_norm = load("attn_norm.weight");
  w.q = load("attn_q.weight");
  w.k = load("attn_k.weight");
  w.v = load("attn_v.weight");
  if (source.spec().qkv_bias) {
    w.q_bias = load("attn_q.bias");
    w.k_bias = load("attn_k.bias");
    w.v_bias = load("attn_v.bias");
  }
  w.o = load("attn_output.weight");
  w.ffn_norm = load("ffn_norm.weight");
  w.gate = load("ffn_gate.weight");
  w.up = load("ffn_up.weight");
  w.down = load("ffn_down.weight");
  return w;
}

}  // namespace conveyor::compress
