// The names that make a directory a Conveyor model: conveyor-model.json (the format,
// the spec, the tokenizer, and the scheme of every tensor) beside model.safetensors
// (the tensors' bytes). Written by `conveyor compress`; recognised by
// open_model_source() (common/loader/open_model.h) by its conveyor-model.json.
#pragma once

#include <cstdint>
#include <string_view>

namespace conveyor {

inline constexpr std::string_view kConveyorModelManifest = "conveyor-model.json";
inline constexpr std::string_view kConveyorModelWeights = "model.safetensors";
inline constexpr std::string_view kConveyorModelFormat = "conveyor-model";
// Raised whenever a reader of the previous version would misread a new directory.
inline constexpr std::int64_t kConveyorModelVersion = 1;

}  // namespace conveyor
