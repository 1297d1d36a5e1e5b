#include "common/loader/open_model.h"

#include <cstdio>
#include <filesystem>
#include <string>
#include <utility>

#include "common/conveyor_model/model_reader.h"
#include "common/gguf/gguf_model.h"
#include "common/hf/hf_model.h"
#include "common/hf/pickle_refusal.h"
#include "common/tokenizer/model_tokenizer.h"
#include "common/tokenizer/tokenizer_json.h"

namespace conveyor {
namespace {

bool is_gguf_file(const std::filesystem::path& path) {
  if (path.extension() == ".gguf") return true;
  // Files without the extension are recognised by their magic.
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return false;
  char magic[4] = {};
  const bool ok = std::fread(magic, 1, 4, f) == 4 && std::string(magic, 4) == "GGUF";
  std::fclose(f);
  return ok;
}

Expected<std::unique_ptr<ModelSource>> open_hf_with_tokenizer(const std::string& path) {
  auto hf = HfModelSource::open(path);
  if (!hf.ok()) return hf.status();
  std::unique_ptr<HfModelSource> model = std::move(hf).value();
  const std::string& json_path = model->tokenizer_json_path();
  // load_tokenizer_json's messages already start with the file's path.
  Expected<TokenizerData> read =
      json_path.empty() ? Expected<TokenizerData>(Status(
                              ErrorCode::kNotFound, "no tokenizer.json in " + model->directory()))
                        : load_tokenizer_json(json_path);
  // kNotFound means "no tokenizer stored", which lets the model load without one. The
  // files read here were seen to exist, so one missing now vanished mid-load: an I/O
  // failure, not an absent tokenizer.
  if (!json_path.empty() && !read.ok() && read.status().code() == ErrorCode::kNotFound) {
    read = Status(ErrorCode::kIo, read.status().message());
  }
  Expected<ModelTokenizer> accepted =
      accept_model_tokenizer(std::move(read), model->spec().vocab_size);
  if (!accepted.ok()) {
    const Status& s = accepted.status();
    return s.message().starts_with(json_path) ? s
                                              : Status(s.code(), json_path + ": " + s.message());
  }
  if (accepted->data) model->set_tokenizer(std::move(*accepted->data));
  model->set_tokenizer_status(std::move(accepted->status));
  return std::unique_ptr<ModelSource>(std::move(model));
}

}  // namespace

Expected<std::unique_ptr<ModelSource>> open_model_source(const std::string& path) {
  std::error_code ec;
  const std::filesystem::path p(path);
  if (!std::filesystem::exists(p, ec)) {
    return Status(ErrorCode::kNotFound, "no model at " + path);
  }
  if (is_pickle_checkpoint_name(path)) return pickle_refusal(path);
  if (!std::filesystem::is_directory(p, ec) && is_gguf_file(p)) return open_gguf_model(path);
  // A directory `conveyor compress` wrote (or its conveyor-model.json).
  if (is_conveyor_model_path(path)) return open_conveyor_model(path);
  // A directory, a .safetensors file or an index: the Hugging Face loader.
  return open_hf_with_tokenizer(path);
}

}  // namespace conveyor
