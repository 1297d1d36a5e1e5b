// A ModelSource that adds a tokenizer to another (random models have none), for tests
// of what a directory keeps of a source's tokenizer.
#pragma once

#include <memory>
#include <optional>
#include <utility>

#include "common/model_source.h"

namespace conveyor::testing {

class ModelWithTokenizer final : public ModelSource {
 public:
  ModelWithTokenizer(std::unique_ptr<ModelSource> inner, TokenizerData tokenizer)
      : inner_(std::move(inner)), tokenizer_(std::move(tokenizer)) {}

  const ModelSpec& spec() const override { return inner_->spec(); }
  std::string format() const override { return inner_->format(); }
  std::string path() const override { return inner_->path(); }
  const std::vector<TensorRef>& tensors() const override { return inner_->tensors(); }
  const std::optional<TokenizerData>& tokenizer() const override { return tokenizer_; }

 private:
  std::unique_ptr<ModelSource> inner_;
  std::optional<TokenizerData> tokenizer_;
};

}  // namespace conveyor::testing
