#include "worker/model_weights.h"

#include <algorithm>
#include <set>
#include <string>

#include "common/status.h"

namespace conveyor {
namespace {

// Uploads one tensor after checking it has the shape the spec implies.
class Uploader {
 public:
  Uploader(Backend& backend, const ModelSource& source) : backend_(backend), source_(source) {}

  WeightPtr matrix(const std::string& name, std::int64_t rows, std::int64_t cols) {
    return upload(name, {rows, cols});
  }
  WeightPtr vector(const std::string& name, std::int64_t length) { return upload(name, {length}); }

 private:
  WeightPtr upload(const std::string& name, const std::vector<std::int64_t>& shape) {
    const TensorRef& tensor = source_.require(name);
    if (tensor.shape != shape) {
      fail(ErrorCode::kMalformed, "tensor " + name + " in " + source_.path() +
                                      " does not have the shape " + shape_string(shape) +
                                      " the model config implies");
    }
    return backend_.upload_weight(tensor);
  }

  Backend& backend_;
  const ModelSource& source_;
};

}  // namespace

ModelWeights ModelWeights::load(Backend& backend, const ModelSource& source, LayerRange range) {
  return load(backend, source, range, range.size());
}

LayerWeights ModelWeights::load_layer(Backend& backend, const ModelSource& source,
                                      std::int64_t layer) {
  const ModelSpec& spec = source.spec();
  Uploader up(backend, source);
  const std::int64_t hidden = spec.hidden_size;
  const std::string p = "blk." + std::to_string(layer) + ".";
  LayerWeights lw;
  lw.attn_norm = up.vector(p + "attn_norm.weight", hidden);
  lw.attn_q = up.matrix(p + "attn_q.weight", spec.q_dim(), hidden);
  lw.attn_k = up.matrix(p + "attn_k.weight", spec.kv_dim(), hidden);
  lw.attn_v = up.matrix(p + "attn_v.weight", spec.kv_dim(), hidden);
  if (spec.qkv_bias) {
    lw.attn_q_bias = up.vector(p + "attn_q.bias", spec.q_dim());
    lw.attn_k_bias = up.vector(p + "attn_k.bias", spec.kv_dim());
    lw.attn_v_bias = up.vector(p + "attn_v.bias", spec.kv_dim());
  }
  lw.attn_output = up.matrix(p + "attn_output.weight", hidden, spec.q_dim());
  lw.ffn_norm = up.vector(p + "ffn_norm.weight", hidden);
  lw.ffn_gate = up.matrix(p + "ffn_gate.weight", spec.intermediate_size, hidden);
  lw.ffn_up = up.matrix(p + "ffn_up.weight", spec.intermediate_size, hidden);
  lw.ffn_down = up.matrix(p + "ffn_down.weight", hidden, spec.intermediate_size);
  return lw;
}

std::uint64_t ModelWeights::layer_bytes(const LayerWeights& l) {
  std::uint64_t total = 0;
  for (const WeightPtr* w :
       {&l.attn_norm, &l.attn_q, &l.attn_k, &l.attn_v, &l.attn_q_bias, &l.attn_k_bias,
        &l.attn_v_bias, &l.attn_output, &l.ffn_norm, &l.ffn_gate, &l.ffn_up, &l.ffn_down}) {
    if (*w != nullptr) total += (*w)->resident_bytes();
  }
  return total;
}

ModelWeights ModelWeights::load(Backend& backend, const ModelSource& source, LayerRange range,
                                std::int64_t resident_layers) {
  const ModelSpec& spec = source.spec();
  validate_model_spec(spec);
  if (range.begin < 0 || range.end > spec.num_layers || range.begin >= range.end) {
    fail(ErrorCode::kInvalidArgument,
         "layer range [" + std::to_string(range.begin) + ", " + std::to_string(range.end) +
             ") is not within the model's " + std::to_string(spec.num_layers) + " layers");
  }
  ModelWeights weights;
  weights.spec_ = spec;
  weights.range_ = range;
  Uploader up(backend, source);
  const std::int64_t hidden = spec.hidden_size;

  if (range.begin == 0)
    weights.token_embd_ = up.matrix("token_embd.weight", spec.vocab_size, hidden);
  weights.layers_.resize(static_cast<std::size_t>(range.size()));
  for (std::int64_t local = 0; local < std::min(resident_layers, range.size()); ++local) {
    weights.layers_[static_cast<std::size_t>(local)] =
        load_layer(backend, source, range.begin + local);
  }
  if (range.end == spec.num_layers) {
    weights.output_norm_ = up.vector("output_norm.weight", hidden);
    if (!spec.tie_embeddings) {
      weights.output_ = up.matrix("output.weight", spec.vocab_size, hidden);
    } else if (weights.token_embd_ != nullptr) {
      weights.output_ = weights.token_embd_;  // one copy serves both
    } else {
      weights.output_ = up.matrix("token_embd.weight", spec.vocab_size, hidden);
    }
  }
  return weights;
}

std::uint64_t ModelWeights::resident_bytes() const {
  std::set<const BackendWeight*> seen;
  std::uint64_t total = 0;
  auto add = [&](const WeightPtr& w) {
    if (w != nullptr && seen.insert(w.get()).second) total += w->resident_bytes();
  };
  add(token_embd_);
  add(output_norm_);
  add(output_);
  for (const auto& l : layers_)
    total += layer_bytes(l);  // layers share no tensor
  return total;
}

}  // namespace conveyor
