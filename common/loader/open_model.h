// Opening a model by path, whatever its format. Lives apart from ModelSource
// (common/) because it needs every format reader and the tokenizer loader.
#pragma once

#include <memory>
#include <string>

#include "common/model_source.h"
#include "common/status.h"

namespace conveyor {

// Opens a GGUF file, a Hugging Face directory (config.json + *.safetensors), a
// single .safetensors file beside a config.json, or a Conveyor model directory (one
// holding conveyor-model.json, as `conveyor compress` writes: common/conveyor_model/).
// Refuses pickle checkpoints (.bin, .pt, .pth, .pkl, .ckpt) with a message that says why.
//
// The tokenizer is read as accept_model_tokenizer() (common/tokenizer/model_tokenizer.h)
// decides for both formats: one Conveyor does not implement leaves tokenizer() empty,
// with the reason in tokenizer_status(), and the model still loads.
Expected<std::unique_ptr<ModelSource>> open_model_source(const std::string& path);

}  // namespace conveyor
