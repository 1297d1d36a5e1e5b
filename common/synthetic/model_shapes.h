// Named model shapes for `conveyor bench`: the dimensions of well-known Llama-family
// models, without their weights, so that throughput can be measured on a model of the
// real size with random weights (random_model_source.h) when the real one is not
// installed.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/model_spec.h"
#include "common/status.h"

namespace conveyor {

struct ModelShape {
  std::string name;            // "llama-1b"
  std::int64_t hidden = 0;     // n_embd
  std::int64_t layers = 0;     // blocks
  std::int64_t heads = 0;      // query heads; head_dim = hidden / heads
  std::int64_t kv_heads = 0;   // key/value heads (grouped-query attention)
  std::int64_t ffn = 0;        // SwiGLU intermediate size
  std::int64_t vocab = 0;      // embedding rows
  bool tied = false;           // the output projection is token_embd
  double rope_theta = 500000;  // the family's RoPE base

  // Parameters of every matrix (embedding counted once when tied; norms included).
  std::int64_t parameters() const;
};

// "llama-1b", "llama-8b", "smollm2-135m", "tiny". Anything else is kNotFound with a
// message that lists the known names.
Expected<ModelShape> model_shape(std::string_view name);
std::vector<std::string> model_shape_names();

// The ModelSpec of a Llama-style model of this shape: rms_norm_eps 1e-5, Hugging
// Face (half-split) RoPE pairs without scaling, no biases, no special tokens (there is
// no tokenizer, and an end-of-sequence id would stop random generations at random
// lengths). Throws Error(kMalformed) naming the shape when the dimensions are not a
// valid model (validate_model_spec, or hidden not a multiple of heads).
ModelSpec spec_for_shape(const ModelShape& shape, std::int64_t max_positions);

}  // namespace conveyor
