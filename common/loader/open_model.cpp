#include <cstdio>
#include <filesystem>
#include <string>

#include "common/gguf/gguf_model.h"
#include "common/hf/hf_model.h"
#include "common/hf/pickle_refusal.h"
#include "common/model_source.h"
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

}  // namespace

Expected<std::unique_ptr<ModelSource>> open_model_source(const std::string& path) {
  std::error_code ec;
  const std::filesystem::path p(path);
  if (!std::filesystem::exists(p, ec)) {
    return Status(ErrorCode::kNotFound, "no model at " + path);
  }
  if (is_pickle_checkpoint_name(path)) return pickle_refusal(path);
  if (!std::filesystem::is_directory(p, ec) && is_gguf_file(p)) return open_gguf_model(path);
  // A directory, a .safetensors file or an index: the Hugging Face loader.
  auto hf = HfModelSource::open(path);
  if (!hf.ok()) return hf.status();
  std::unique_ptr<HfModelSource> model = std::move(hf).value();
  if (!model->tokenizer_json_path().empty()) {
    Expected<TokenizerData> tokenizer = load_tokenizer_json(model->tokenizer_json_path());
    if (!tokenizer.ok()) {
      return Status(tokenizer.status().code(),
                    model->tokenizer_json_path() + ": " + tokenizer.status().message());
    }
    model->set_tokenizer(std::move(tokenizer).value());
  }
  return std::unique_ptr<ModelSource>(std::move(model));
}

}  // namespace conveyor
