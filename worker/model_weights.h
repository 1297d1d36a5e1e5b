// The weights of a contiguous range of layers, uploaded through a Backend from a
// ModelSource (canonical tensor names, common/model_source.h). The first stage also
// holds the token embedding; the last also holds the final norm and the output
// projection (token_embd itself when the embeddings are tied).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "common/model_source.h"
#include "common/model_spec.h"
#include "kernels/backend.h"

namespace conveyor {

// Layers [begin, end) of a model.
struct LayerRange {
  std::int64_t begin = 0;
  std::int64_t end = 0;
  std::int64_t size() const { return end - begin; }
  static LayerRange all(const ModelSpec& spec) { return {0, spec.num_layers}; }
};

using WeightPtr = std::shared_ptr<const BackendWeight>;

struct LayerWeights {
  WeightPtr attn_norm;    // [hidden]
  WeightPtr attn_q;       // [q_dim, hidden]
  WeightPtr attn_k;       // [kv_dim, hidden]
  WeightPtr attn_v;       // [kv_dim, hidden]
  WeightPtr attn_q_bias;  // [q_dim]; null without qkv_bias
  WeightPtr attn_k_bias;  // [kv_dim]
  WeightPtr attn_v_bias;  // [kv_dim]
  WeightPtr attn_output;  // [hidden, q_dim]
  WeightPtr ffn_norm;     // [hidden]
  WeightPtr ffn_gate;     // [ff, hidden]
  WeightPtr ffn_up;       // [ff, hidden]
  WeightPtr ffn_down;     // [hidden, ff]
};

class ModelWeights {
 public:
  // Throws Error: kInvalidArgument for a range outside the model, kNotFound for a
  // missing tensor, kMalformed for a tensor whose shape the spec contradicts,
  // kUnsupported for a dtype the backend cannot take.
  static ModelWeights load(Backend& backend, const ModelSource& source, LayerRange range);
  // As load(), but uploads only the first `resident_layers` layers of the range; the
  // others are left empty (is_resident() false) for a WeightStore to stream in.
  static ModelWeights load(Backend& backend, const ModelSource& source, LayerRange range,
                           std::int64_t resident_layers);
  // Uploads the weights of one layer (a model layer index, not a local one). Throws as
  // load().
  static LayerWeights load_layer(Backend& backend, const ModelSource& source, std::int64_t layer);
  // Bytes the backend holds for one layer's weights.
  static std::uint64_t layer_bytes(const LayerWeights& layer);

  const ModelSpec& spec() const { return spec_; }
  LayerRange layers() const { return range_; }
  bool has_embedding() const { return token_embd_ != nullptr; }
  bool has_output() const { return output_ != nullptr; }

  // Preconditions: has_embedding() / has_output().
  const BackendWeight& token_embd() const { return *token_embd_; }
  const BackendWeight& output_norm() const { return *output_norm_; }
  const BackendWeight& output() const { return *output_; }
  // `local` counts from the first layer held (0 = layers().begin).
  const LayerWeights& layer(std::int64_t local) const {
    return layers_[static_cast<std::size_t>(local)];
  }
  bool is_resident(std::int64_t local) const { return layer(local).attn_norm != nullptr; }

  // Bytes the backend holds for these weights (a tied output counted once).
  std::uint64_t resident_bytes() const;

 private:
  ModelSpec spec_;
  LayerRange range_;
  WeightPtr token_embd_;
  WeightPtr output_norm_;
  WeightPtr output_;
  std::vector<LayerWeights> layers_;
};

}  // namespace conveyor
