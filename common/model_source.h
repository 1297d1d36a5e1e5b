// A loaded model file or directory: its ModelSpec, its tensors under canonical
// names, and its tokenizer when it has one. GGUF files and Hugging Face
// directories both present themselves through this interface.
//
// Canonical tensor names follow GGUF's (shapes outermost first, [out, in]):
//   token_embd.weight            [vocab, hidden]
//   output_norm.weight           [hidden]
//   output.weight                [vocab, hidden]   absent when embeddings are tied
//   blk.N.attn_norm.weight       [hidden]
//   blk.N.attn_q.weight          [q_dim, hidden]   (+ .bias [q_dim] with qkv_bias)
//   blk.N.attn_k.weight          [kv_dim, hidden]  (+ .bias)
//   blk.N.attn_v.weight          [kv_dim, hidden]  (+ .bias)
//   blk.N.attn_output.weight     [hidden, q_dim]
//   blk.N.ffn_norm.weight        [hidden]
//   blk.N.ffn_gate.weight        [ff, hidden]
//   blk.N.ffn_up.weight          [ff, hidden]
//   blk.N.ffn_down.weight        [hidden, ff]
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/model_spec.h"
#include "common/status.h"
#include "common/tensor_ref.h"
#include "common/tokenizer/tokenizer_data.h"

namespace conveyor {

class ModelSource {
 public:
  virtual ~ModelSource() = default;

  virtual const ModelSpec& spec() const = 0;
  virtual std::string format() const = 0;  // "gguf v3", "safetensors (2 shards)"
  virtual std::string path() const = 0;

  // All tensors, canonical names, in a stable order.
  virtual const std::vector<TensorRef>& tensors() const = 0;
  // nullptr when absent.
  const TensorRef* find(const std::string& name) const;
  // Throws Error(kNotFound) naming the tensor and the file.
  const TensorRef& require(const std::string& name) const;

  // The tokenizer stored with the model, if any (fixtures have none).
  virtual const std::optional<TokenizerData>& tokenizer() const = 0;
  // Why tokenizer() is empty (kNotFound: none stored; kUnsupported: a kind Conveyor
  // does not implement); OK when there is one.
  virtual Status tokenizer_status() const { return {}; }
};

}  // namespace conveyor
