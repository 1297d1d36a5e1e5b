// Hugging Face tensor names of the Llama family (Llama, Mistral, Qwen2) and their
// canonical (GGUF-style) names; see common/model_source.h for the canonical list.
//   model.embed_tokens.weight                        -> token_embd.weight
//   model.norm.weight                                -> output_norm.weight
//   lm_head.weight                                   -> output.weight
//   model.layers.N.input_layernorm.weight            -> blk.N.attn_norm.weight
//   model.layers.N.self_attn.{q,k,v}_proj.{weight,bias} -> blk.N.attn_{q,k,v}.{weight,bias}
//   model.layers.N.self_attn.o_proj.weight           -> blk.N.attn_output.weight
//   model.layers.N.post_attention_layernorm.weight   -> blk.N.ffn_norm.weight
//   model.layers.N.mlp.{gate,up,down}_proj.weight    -> blk.N.ffn_{gate,up,down}.weight
// Shapes are not touched: both conventions store linear weights as [out, in].
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace conveyor {

// The canonical name, or nullopt when `hf_name` is not one of the names above.
std::optional<std::string> canonical_name_from_hf(std::string_view hf_name);

// Tensors some checkpoints store that hold nothing the engine needs: the RoPE
// inverse-frequency tables (`*.rotary_emb.inv_freq`) that older exports saved as
// buffers, and which the engine recomputes from the ModelSpec.
bool is_ignorable_hf_tensor(std::string_view hf_name);

}  // namespace conveyor
