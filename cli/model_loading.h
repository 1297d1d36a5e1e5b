// Opening models from the command line: an alias, a GGUF file or a Hugging Face
// directory, with errors that say what to do.
#pragma once

#include <memory>
#include <string>

#include "common/model_source.h"

namespace conveyor::cli {

// Resolves aliases and opens the model; throws Error with a message for the user.
std::unique_ptr<ModelSource> open_model_or_throw(const std::string& model);

}  // namespace conveyor::cli
