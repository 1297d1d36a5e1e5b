// What a canonical tensor name (common/model_source.h) is in the Llama block, for the
// `role` of a tensor scheme and for compress to decide what it quantises.
#pragma once

#include <string>
#include <string_view>

namespace conveyor {

// "embedding" (token_embd.weight), "output" (output.weight), "norm" (*_norm.weight),
// "linear" (blk.N.attn_q/k/v/output and ffn_gate/up/down weights), "bias" (blk.N.*.bias),
// "other" (anything else, e.g. GGUF's rope_freqs.weight).
std::string tensor_role(std::string_view name);

}  // namespace conveyor
