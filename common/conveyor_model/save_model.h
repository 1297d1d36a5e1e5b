// Any ModelSource saved as a Conveyor model directory with every tensor as it is
// stored (GGUF block types included, as U8 blocks): the same model, bit for bit, in
// the directory format. What compress writes for the tensors it keeps, and how tests
// make directories to load back or to damage.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "common/conveyor_model/model_manifest.h"
#include "common/model_source.h"

namespace conveyor {

// The manifest of `source` stored as is: its spec, its tokenizer (or the reason it has
// none) and one scheme per tensor with its stored dtype, roles from tensor_role().
ModelManifest manifest_of(const ModelSource& source);

// Writes `source` to `dir` (ConveyorModelWriter); `producer` goes into the manifest.
// Throws what the writer throws.
void save_conveyor_model(const ModelSource& source, const std::string& dir,
                         const nlohmann::json& producer = nlohmann::json::object());

}  // namespace conveyor
