// Model aliases and the local model cache. `--model` accepts an alias
// ("smollm2-135m-instruct"), a GGUF file, or a Hugging Face directory; aliases
// resolve to files under $CONVEYOR_HOME/models that scripts/install-model.sh puts there.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace conveyor {

struct KnownModel {
  std::string alias;
  std::string file_name;     // inside $CONVEYOR_HOME/models
  std::uint64_t size_bytes;  // checked at resolution; the hash is checked at install
  std::string sha256;
  std::string source;  // where install-model.sh gets it
};

const std::vector<KnownModel>& known_models();

// $CONVEYOR_HOME, else $HOME/.cache/conveyor.
std::string conveyor_home();

// An alias becomes its cache path (kNotFound with the install command when absent, or
// kMalformed when its size is wrong); anything else is returned unchanged.
Expected<std::string> resolve_model_path(const std::string& model);

}  // namespace conveyor
