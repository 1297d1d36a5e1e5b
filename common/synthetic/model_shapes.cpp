#include "common/synthetic/model_shapes.h"

#include <array>

namespace conveyor {
namespace {

// Dimensions from the models' published config.json files; `tiny` is ours, small
// enough for a forward pass in a unit test to take milliseconds.
const std::array<ModelShape, 4>& known_shapes() {
  static const std::array<ModelShape, 4> shapes = {{
      {"llama-1b", 2048, 16, 32, 8, 8192, 128256, true, 500000},
      {"llama-8b", 4096, 32, 32, 8, 14336, 128256, false, 500000},
      {"smollm2-135m", 576, 30, 9, 3, 1536, 49152, true, 100000},
      {"tiny", 64, 2, 4, 2, 128, 256, true, 10000},
  }};
  return shapes;
}

}  // namespace

std::int64_t ModelShape::parameters() const {
  const std::int64_t head_dim = heads > 0 ? hidden / heads : 0;
  const std::int64_t q_dim = heads * head_dim;
  const std::int64_t kv_dim = kv_heads * head_dim;
  const std::int64_t attention = 2 * q_dim * hidden + 2 * kv_dim * hidden;
  const std::int64_t mlp = 3 * ffn * hidden;
  const std::int64_t norms = 2 * hidden;
  const std::int64_t embeddings = (tied ? 1 : 2) * vocab * hidden;
  return layers * (attention + mlp + norms) + embeddings + hidden;
}

Expected<ModelShape> model_shape(std::string_view name) {
  for (const ModelShape& shape : known_shapes()) {
    if (shape.name == name) return shape;
  }
  std::string known;
  for (const std::string& n : model_shape_names()) {
    known += (known.empty() ? "" : ", ") + n;
  }
  return Status(ErrorCode::kNotFound,
                "unknown model shape '" + std::string(name) + "' (known: " + known + ")");
}

std::vector<std::string> model_shape_names() {
  std::vector<std::string> names;
  for (const ModelShape& shape : known_shapes())
    names.push_back(shape.name);
  return names;
}

ModelSpec spec_for_shape(const ModelShape& shape, std::int64_t max_positions) {
  const std::string origin = "random:" + shape.name;
  if (shape.heads <= 0 || shape.hidden % shape.heads != 0) {
    fail(ErrorCode::kMalformed, origin + ": hidden size " + std::to_string(shape.hidden) +
                                    " is not a multiple of the " + std::to_string(shape.heads) +
                                    " heads");
  }
  ModelSpec spec;
  spec.architecture = "llama";
  spec.name = shape.name;
  spec.vocab_size = shape.vocab;
  spec.hidden_size = shape.hidden;
  spec.intermediate_size = shape.ffn;
  spec.num_layers = shape.layers;
  spec.num_heads = shape.heads;
  spec.num_kv_heads = shape.kv_heads;
  spec.head_dim = shape.hidden / shape.heads;
  spec.max_positions = max_positions;
  spec.rms_norm_eps = 1e-5;
  spec.rope_theta = shape.rope_theta;
  // Weights are random, so neither pairing is more faithful; half-split is what the
  // Hugging Face checkpoints of these models use.
  spec.rope_pairing = RopePairing::kHalfSplit;
  spec.tie_embeddings = shape.tied;
  validate_model_spec(spec, origin);
  return spec;
}

}  // namespace conveyor
