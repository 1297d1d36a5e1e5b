// ModelSpec as JSON, every field, for a Conveyor model directory's conveyor-model.json:
// what a GGUF file's metadata or a config.json said, kept exactly (doubles and the
// rope frequency factors read back bit for bit), so that a compressed model runs the
// architecture its source ran.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "common/model_spec.h"

namespace conveyor {

nlohmann::ordered_json model_spec_to_json(const ModelSpec& spec);

// Throws Error(kMalformed) naming `where` and the field when one is missing, of the
// wrong type, or an enumeration holds a name it does not define. Does not judge the
// values: validate_model_spec() does that.
ModelSpec model_spec_from_json(const nlohmann::json& json, const std::string& where = "spec");

}  // namespace conveyor
