// The tensors a ModelSpec implies, and the check that a loaded model has them with
// the right shapes. Every loader runs it, so a file whose header disagrees with its
// config (or a GGUF whose tensor infos disagree with its metadata) fails at load,
// not with an out-of-bounds read in the middle of a forward pass.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/model_spec.h"
#include "common/tensor_ref.h"

namespace conveyor {

class ModelSource;

struct ExpectedTensor {
  std::string name;                 // canonical
  std::vector<std::int64_t> shape;  // outermost first
};

// Every tensor a source must expose for `spec`, in canonical order: token_embd, then
// for each block attn_norm, attn_q (+bias), attn_k (+bias), attn_v (+bias),
// attn_output, ffn_norm, ffn_gate, ffn_up, ffn_down, then output_norm and, unless the
// embeddings are tied, output.
std::vector<ExpectedTensor> expected_tensors(const ModelSpec& spec);

// Throws Error naming the tensor and `origin`:
//   kNotFound   an expected tensor is missing;
//   kMalformed  a shape differs from the expected one; a byte length disagrees with
//               dtype x shape, or the row scales disagree with it (row_scales_match());
//               output.weight is present although the embeddings are
//               tied; a q/k/v bias is present although the spec has none; a blk.N
//               tensor has N >= num_layers; a name appears twice.
// Tensors with other names (e.g. GGUF's rope_freqs.weight) are left to the caller.
void check_tensor_shapes(const ModelSpec& spec, const std::vector<TensorRef>& tensors,
                         const std::string& origin);
void check_tensor_shapes(const ModelSource& source);

}  // namespace conveyor
