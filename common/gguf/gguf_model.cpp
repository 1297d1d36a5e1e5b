#include "common/gguf/gguf_model.h"

#include <utility>

#include "common/gguf/gguf_spec.h"
#include "common/gguf/gguf_tokenizer.h"
#include "common/model_tensors.h"
#include "common/tokenizer/model_tokenizer.h"

namespace conveyor {

GgufModel::GgufModel(GgufFile file) : file_(std::move(file)) {
  spec_ = gguf_model_spec(file_);
  tensors_.reserve(file_.tensors().size());
  for (const auto& info : file_.tensors()) {
    tensors_.push_back(file_.tensor_ref(info));
  }
  check_tensor_shapes(spec_, tensors_, file_.path());

  Expected<TokenizerData> read =
      gguf_has_tokenizer(file_.metadata())
          ? read_gguf_tokenizer(file_.metadata(), spec_.vocab_size)
          : Expected<TokenizerData>(Status(ErrorCode::kNotFound, "the file carries no tokenizer"));
  Expected<ModelTokenizer> accepted = accept_model_tokenizer(std::move(read), spec_.vocab_size);
  if (!accepted.ok()) {
    throw Error(accepted.status().code(), "tokenizer: " + accepted.status().message());
  }
  tokenizer_ = std::move(accepted->data);
  tokenizer_status_ = accepted->status;
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
