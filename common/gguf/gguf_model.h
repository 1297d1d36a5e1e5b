// A GGUF file presented as a ModelSource: ModelSpec from its metadata, tensors
// under their (already canonical) GGUF names with shapes outermost first, and the
// tokenizer from tokenizer.ggml.*.
#pragma once

#include <memory>
#include <string>

#include "common/gguf/gguf_reader.h"
#include "common/model_source.h"
#include "common/status.h"

namespace conveyor {

class GgufModel final : public ModelSource {
 public:
  // Throws Error; open_gguf_model() is the Status-returning entry point.
  explicit GgufModel(GgufFile file);

  const ModelSpec& spec() const override { return spec_; }
  std::string format() const override { return "gguf v" + std::to_string(file_.version()); }
  std::string path() const override { return file_.path(); }
  const std::vector<TensorRef>& tensors() const override { return tensors_; }
  // Empty when the file has no tokenizer or one of a kind Conveyor does not
  // implement; tokenizer_status() then says which.
  const std::optional<TokenizerData>& tokenizer() const override { return tokenizer_; }
  Status tokenizer_status() const override { return tokenizer_status_; }

  const GgufFile& file() const { return file_; }

 private:
  GgufFile file_;
  ModelSpec spec_;
  std::vector<TensorRef> tensors_;  // file order; views into file_'s map
  std::optional<TokenizerData> tokenizer_;
  Status tokenizer_status_;
};

// Opens, parses and checks a GGUF model: the header (see gguf_reader.h), the spec
// (gguf_spec.h), every required tensor's shape against the spec, and the
// tokenizer's consistency. A tokenizer of an unsupported kind leaves tokenizer()
// empty but the model loads; a malformed one fails the open. Messages start with
// the path.
Expected<std::unique_ptr<ModelSource>> open_gguf_model(const std::string& path);

}  // namespace conveyor
