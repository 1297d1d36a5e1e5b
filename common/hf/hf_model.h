// A Hugging Face model directory as a ModelSource: config.json (+ generation_config.json)
// for the spec, safetensors for the weights, tokenizer.json beside them.
//
// Accepted paths:
//   a directory holding config.json and model.safetensors, or
//     model.safetensors.index.json and its shards, or *.safetensors shards without an
//     index (looked for in that order, as transformers does);
//   a .safetensors file or a model.safetensors.index.json beside a config.json.
// Pickle checkpoints (a path to pytorch_model.bin / *.pt / *.pth / *.ckpt / *.pkl, or a
// directory that holds only such files) are refused with kUnsupported; see
// pickle_refusal.h.
//
// Tensors are exposed under canonical names (hf_names.h) with their stored shapes, in
// the order of expected_tensors(spec), after check_tensor_shapes() has checked them
// against the spec. Stored tensors outside the Llama-family layout are refused
// (kUnsupported) rather than silently ignored, except RoPE inv_freq buffers. Weights
// must be F32, F16 or BF16 (kUnsupported naming the tensor otherwise).
//
// Tied embeddings: when config.json sets tie_word_embeddings, a stored lm_head.weight
// is dropped and no output.weight is exposed; the output projection is token_embd, as
// in transformers, which also ignores the stored copy when it ties the weights.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/hf/safetensors_checkpoint.h"
#include "common/model_source.h"
#include "common/status.h"

namespace conveyor {

class HfModelSource final : public ModelSource {
 public:
  static Expected<std::unique_ptr<HfModelSource>> open(const std::string& path);

  const ModelSpec& spec() const override { return spec_; }
  std::string format() const override;  // "safetensors", "safetensors (2 shards)"
  std::string path() const override { return path_; }
  const std::vector<TensorRef>& tensors() const override { return tensors_; }
  const std::optional<TokenizerData>& tokenizer() const override { return tokenizer_; }

  Status tokenizer_status() const override { return tokenizer_status_; }

  // Tokenizer hook. This class does not read tokenizer files; the tokenizer loader
  // (common/tokenizer/) reads them from these paths and hands the result back with
  // set_tokenizer(), or the reason there is none with set_tokenizer_status(). Each
  // path is empty when the directory has no such file.
  const std::string& tokenizer_json_path() const { return tokenizer_json_path_; }
  const std::string& tokenizer_config_path() const { return tokenizer_config_path_; }
  void set_tokenizer(TokenizerData tokenizer) { tokenizer_ = std::move(tokenizer); }
  void set_tokenizer_status(Status status) { tokenizer_status_ = std::move(status); }

  // The model directory (the parent of a file path).
  const std::string& directory() const { return directory_; }

 private:
  explicit HfModelSource(SafetensorsCheckpoint checkpoint) : checkpoint_(std::move(checkpoint)) {}
  void load_tensors();  // throws Error

  SafetensorsCheckpoint checkpoint_;  // owns the mappings tensors_ point into
  ModelSpec spec_;
  std::string path_;
  std::string directory_;
  std::vector<TensorRef> tensors_;
  std::optional<TokenizerData> tokenizer_;
  Status tokenizer_status_;
  std::string tokenizer_json_path_;
  std::string tokenizer_config_path_;
};

// HfModelSource::open as the generic interface.
Expected<std::unique_ptr<ModelSource>> open_hf_model(const std::string& path);

}  // namespace conveyor
