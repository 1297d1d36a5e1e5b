#include "common/hf/pickle_refusal.h"

#include <array>

namespace conveyor {

bool is_pickle_checkpoint_name(std::string_view path) {
  constexpr std::array<std::string_view, 7> kSuffixes = {
      ".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".bin.index.json"};
  for (const auto suffix : kSuffixes) {
    if (path.ends_with(suffix)) return true;
  }
  return false;
}

Status pickle_refusal(const std::string& path) {
  return Status(ErrorCode::kUnsupported,
                path +
                    " is a PyTorch pickle checkpoint. Pickle files can execute arbitrary code "
                    "when loaded, so Conveyor refuses them. Convert the model to safetensors "
                    "(for example: transformers' save_pretrained(out_dir, "
                    "safe_serialization=True)) and load that instead.");
}

}  // namespace conveyor
