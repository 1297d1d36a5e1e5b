// A model of a named shape (model_shapes.h) with random weights, presented as a
// ModelSource, so that `conveyor bench` measures a real-sized model without its files.
// The weights are scaled so that activations stay in range through every layer and
// the logits are finite and differ between tokens; the text it generates is noise.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "common/dtype.h"
#include "common/model_source.h"
#include "common/synthetic/model_shapes.h"

namespace conveyor {

struct RandomModelOptions {
  DType dtype = DType::kBF16;  // of the matrices; norms are always f32, as in GGUF files
  std::uint64_t seed = 0;
  std::int64_t max_positions = 4096;
  // Generating threads; <= 0: one per hardware thread. The weights are the same bytes
  // whatever the count.
  int threads = 0;
};

// The dtype a tensor of `shape` is stored in when `requested` is asked for: 1-D
// tensors (norms) are f32; a matrix whose rows are not a whole number of the
// requested type's blocks falls back, as llama.cpp's quantiser does, to Q8_0 (rows of
// 32) or else F16. Only the K-quants (blocks of 256) fall back for the named shapes.
DType random_tensor_dtype(DType requested, const std::vector<std::int64_t>& shape);

// Bytes the weights of `shape` take in `dtype` (what make_random_model allocates).
std::uint64_t random_model_bytes(const ModelShape& shape, DType dtype);

// Allocates and fills every tensor the spec (spec_for_shape) needs, under canonical
// names; the source owns the bytes. Matrices hold values of mean 0 and standard
// deviation 1 / sqrt(in_features); norms hold 1. No tokenizer: tokenizer() is empty
// and tokenizer_status() is kNotFound. format() is "random (<shape>, <dtype>)", path()
// "random:<shape>". Throws Error: kMalformed for an invalid shape, kResourceExhausted
// when the memory cannot be mapped. Linux overcommits: compare random_model_bytes()
// with the memory available first, or an oversized model meets the OOM killer instead.
std::unique_ptr<ModelSource> make_random_model(const ModelShape& shape,
                                               const RandomModelOptions& options = {});

}  // namespace conveyor
