#include "common/conveyor_model/tensor_role.h"

#include <array>

namespace conveyor {

std::string tensor_role(std::string_view name) {
  if (name == "token_embd.weight") return "embedding";
  if (name == "output.weight") return "output";
  if (name.ends_with("_norm.weight")) return "norm";
  if (!name.starts_with("blk.")) return "other";
  if (name.ends_with(".bias")) return "bias";
  static constexpr std::array<std::string_view, 7> kLinear = {
      ".attn_q.weight",   ".attn_k.weight", ".attn_v.weight",  ".attn_output.weight",
      ".ffn_gate.weight", ".ffn_up.weight", ".ffn_down.weight"};
  for (std::string_view suffix : kLinear) {
    if (name.ends_with(suffix)) return "linear";
  }
  return "other";
}

}  // namespace conveyor
