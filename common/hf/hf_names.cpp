#include "common/hf/hf_names.h"

#include <array>
#include <utility>

namespace conveyor {
namespace {

constexpr std::array<std::pair<std::string_view, std::string_view>, 3> kGlobalNames = {{
    {"model.embed_tokens.weight", "token_embd.weight"},
    {"model.norm.weight", "output_norm.weight"},
    {"lm_head.weight", "output.weight"},
}};

// Suffixes after "model.layers.N." and after "blk.N.", in canonical order.
constexpr std::array<std::pair<std::string_view, std::string_view>, 12> kLayerNames = {{
    {"input_layernorm.weight", "attn_norm.weight"},
    {"self_attn.q_proj.weight", "attn_q.weight"},
    {"self_attn.q_proj.bias", "attn_q.bias"},
    {"self_attn.k_proj.weight", "attn_k.weight"},
    {"self_attn.k_proj.bias", "attn_k.bias"},
    {"self_attn.v_proj.weight", "attn_v.weight"},
    {"self_attn.v_proj.bias", "attn_v.bias"},
    {"self_attn.o_proj.weight", "attn_output.weight"},
    {"post_attention_layernorm.weight", "ffn_norm.weight"},
    {"mlp.gate_proj.weight", "ffn_gate.weight"},
    {"mlp.up_proj.weight", "ffn_up.weight"},
    {"mlp.down_proj.weight", "ffn_down.weight"},
}};

constexpr std::string_view kLayerPrefix = "model.layers.";
constexpr std::size_t kMaxLayerDigits = 6;  // far above any real depth; no overflow

}  // namespace

std::optional<std::string> canonical_name_from_hf(std::string_view hf_name) {
  for (const auto& [hf, canonical] : kGlobalNames) {
    if (hf_name == hf) return std::string(canonical);
  }
  if (!hf_name.starts_with(kLayerPrefix)) return std::nullopt;
  const std::string_view rest = hf_name.substr(kLayerPrefix.size());
  const std::size_t dot = rest.find('.');
  if (dot == std::string_view::npos || dot == 0 || dot > kMaxLayerDigits) return std::nullopt;
  const std::string_view layer = rest.substr(0, dot);
  for (const char c : layer) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  if (layer.size() > 1 && layer[0] == '0') return std::nullopt;  // one spelling per layer
  const std::string_view suffix = rest.substr(dot + 1);
  for (const auto& [hf, canonical] : kLayerNames) {
    if (suffix == hf) return "blk." + std::string(layer) + "." + std::string(canonical);
  }
  return std::nullopt;
}

bool is_ignorable_hf_tensor(std::string_view hf_name) {
  return hf_name.ends_with(".rotary_emb.inv_freq") || hf_name == "rotary_emb.inv_freq";
}

}  // namespace conveyor
