#include "common/gguf/gguf_model.h"

#include <utility>

#include "common/gguf/gguf_spec.h"
#include "common/gguf/gguf_tokenizer.h"
#include "common/model_tensors.h"

namespace conveyor {

GgufModel::GgufModel(GgufFile file) : file_(std::move(file)) {
  spec_ = gguf_model_spec(file_);
  tensors_.reserve(file_.tensors().size());
  for (const auto& info : file_.tensors()) {
    tensors_.push_back(file_.tensor_ref(info));
  }
  check_tensor_shapes(spec_, tensors_, file_.path());

  if (gguf_has_tokenizer(file_.metadata())) {
    auto tok = read_gguf_tokenizer(file_.metadata());
    if (tok.ok()) {
      if (static_cast<std::int64_t>(tok->tokens.size()) > spec_.vocab_size) {
        fail(ErrorCode::kMalformed, "the tokenizer has " + std::to_string(tok->tokens.size()) +
                                        " tokens, more than the model's vocabulary of " +
                                        std::to_string(spec_.vocab_size));
      }
      tokenizer_ = std::move(tok).value();
    } else if (tok.status().code() == ErrorCode::kUnsupported) {
      tokenizer_status_ = tok.status();  // the weights are still usable without it
    } else {
      throw Error(tok.status().code(), "tokenizer: " + tok.status().message());
    }
  } else {
    tokenizer_status_ = Status(ErrorCode::kNotFound, "the file carries no tokenizer");
  }
}

Expected<std::unique_ptr<ModelSource>> open_gguf_model(const std::string& path) {
  auto file = GgufFile::open(path);
  if (!file.ok()) return file.status();
  try {
    return std::unique_ptr<ModelSource>(std::make_unique<GgufModel>(std::move(file).value()));
  } catch (const Error& e) {
    const std::string message = e.what();
    return Status(e.code(), message.starts_with(path) ? message : path + ": " + message);
  } catch (const std::bad_alloc&) {
    return Status(ErrorCode::kResourceExhausted, path + ": out of memory loading the model");
  }
}

}  // namespace conveyor
