// What the compress tests share: random models of small shapes, the engine's logits of
// a prompt on the CPU backend (f32 activations), a source with a changed spec, and a
// check that `conveyor generate` runs a compressed model.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "common/model_source.h"
#include "common/synthetic/random_model_source.h"
#include "kernels/cpu/cpu_backend.h"
#include "tests/cli/conveyor_process.h"
#include "worker/llama_model.h"

namespace conveyor::testing {

inline std::unique_ptr<ModelSource> random_model(const ModelShape& shape, DType dtype,
                                                 std::uint64_t seed = 1) {
  RandomModelOptions options;
  options.dtype = dtype;
  options.seed = seed;
  options.max_positions = 256;
  options.threads = 2;
  return make_random_model(shape, options);
}

// hidden 64: int4 rows of 64 take q4_1. hidden 128: q4_g128 where k is 128 (ff 256 too).
inline ModelShape tiny_shape() {
  return {"tiny-test", 64, 2, 4, 2, 128, 256, true, 10000};
}
inline ModelShape wide_shape() {
  return {"wide-test", 128, 2, 4, 2, 256, 320, false, 10000};
}

// Logits f32 [tokens, vocab] of one sequence through the engine (CPU backend).
inline std::vector<float> engine_logits(const ModelSource& source,
                                        std::span<const std::int32_t> tokens) {
  const ModelSpec& spec = source.spec();
  CpuBackendOptions backend_options;
  backend_options.threads = 2;
  CpuBackend backend(backend_options);
  const std::int64_t blocks = (static_cast<std::int64_t>(tokens.size()) + 15) / 16;
  KvCache cache(backend, {spec.num_layers, blocks, 16, spec.kv_dim()});
  LlamaModel model(backend, ModelWeights::load(backend, source, LayerRange::all(spec)), cache);
  std::vector<std::int32_t> table(static_cast<std::size_t>(blocks));
  for (std::int64_t i = 0; i < blocks; ++i)
    table[static_cast<std::size_t>(i)] = static_cast<std::int32_t>(i);
  const SequenceStep step{tokens, 0, table, LogitsWanted::kAll};
  return model.forward(std::span<const SequenceStep>(&step, 1)).logits;
}

inline float max_abs_difference(std::span<const float> a, std::span<const float> b) {
  float worst = a.size() == b.size() ? 0.0f : INFINITY;
  for (std::size_t i = 0; i < a.size() && i < b.size(); ++i)
    worst = std::max(worst, std::fabs(a[i] - b[i]));
  return worst;
}

inline float max_abs(std::span<const float> a) {
  float worst = 0;
  for (float v : a)
    worst = std::max(worst, std::fabs(v));
  return worst;
}

// Another source's tensors under a changed spec (a GGUF-style interleaved RoPE, say).
class WithSpec final : public ModelSource {
 public:
  WithSpec(std::unique_ptr<ModelSource> inner, ModelSpec spec)
      : inner_(std::move(inner)), spec_(std::move(spec)) {}
  const ModelSpec& spec() const override { return spec_; }
  std::string format() const override { return inner_->format(); }
  std::string path() const override { return inner_->path(); }
  const std::vector<TensorRef>& tensors() const override { return inner_->tensors(); }
  const std::optional<TokenizerData>& tokenizer() const override { return inner_->tokenizer(); }

 private:
  std::unique_ptr<ModelSource> inner_;
  ModelSpec spec_;
};

// Another source (of f32 tensors) with some tensors' values changed by `edit(name,
// values)`: a block made more sensitive, or made to do nothing.
class EditedSource final : public ModelSource {
 public:
  using Edit = std::function<void(const std::string& name, std::vector<float>& values)>;
  EditedSource(std::unique_ptr<ModelSource> inner, const Edit& edit) : inner_(std::move(inner)) {
    tensors_ = inner_->tensors();
    values_.reserve(tensors_.size());
    for (TensorRef& t : tensors_) {
      if (t.dtype != DType::kF32) continue;
      std::vector<float>& v = values_.emplace_back(static_cast<std::size_t>(t.elements()));
      std::memcpy(v.data(), t.bytes.data(), t.bytes.size());
      edit(t.name, v);
      t.bytes = {reinterpret_cast<const std::uint8_t*>(v.data()), t.bytes.size()};
    }
  }
  const ModelSpec& spec() const override { return inner_->spec(); }
  std::string format() const override { return inner_->format(); }
  std::string path() const override { return inner_->path(); }
  const std::vector<TensorRef>& tensors() const override { return tensors_; }
  const std::optional<TokenizerData>& tokenizer() const override { return inner_->tokenizer(); }

 private:
  std::unique_ptr<ModelSource> inner_;
  std::vector<TensorRef> tensors_;
  std::vector<std::vector<float>> values_;  // reserved: the spans into it stay valid
};

// `conveyor generate` on the model at `path`: eight greedy token ids, printed.
inline void check_generates_ids(const std::string& path) {
  const CommandOutput r = run_conveyor("generate -q --model " + path +
                                       " --prompt-ids 1,2,3,4 --max-tokens 8 --temperature 0 "
                                       "--ignore-eos --print-ids --threads 2");
  INFO(r.out);
  REQUIRE(r.exit_code == 0);
  CHECK(std::count(r.out.begin(), r.out.end(), ',') == 7);
}

}  // namespace conveyor::testing
