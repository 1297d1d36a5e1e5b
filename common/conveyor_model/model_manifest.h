// conveyor-model.json: everything about a Conveyor model directory except the tensors'
// bytes. The format name and version come first, so that a reader refuses what it
// cannot read before it misreads it.
//
//   {"format": "conveyor-model", "version": 1,
//    "spec": {...model_spec_json.h...},
//    "tensors": [{...tensor_scheme.h...}, ...],
//    "producer": {...how the model was made: free-form, for people...},
//    "tokenizer": {...tokenizer_data_json.h...} or null,
//    "tokenizer_note": "why there is none" (only with a null tokenizer)}
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/conveyor_model/tensor_scheme.h"
#include "common/model_spec.h"
#include "common/tokenizer/tokenizer_data.h"

namespace conveyor {

struct ModelManifest {
  ModelSpec spec;
  std::optional<TokenizerData> tokenizer;
  std::string tokenizer_note;  // why tokenizer is empty (the source's tokenizer_status)
  std::vector<TensorScheme> tensors;
  nlohmann::json producer = nlohmann::json::object();

  // nullptr when absent.
  const TensorScheme* find(const std::string& name) const;
  TensorScheme* find(const std::string& name);
};

nlohmann::ordered_json manifest_to_json(const ModelManifest& manifest);

// Throws Error(kMalformed) when the format name is not "conveyor-model", a field is
// missing or mistyped, or a tensor (or a safetensors entry) is named twice;
// Error(kUnsupported) for a version other than kConveyorModelVersion or a dtype this
// build does not know. Does not validate the spec or compare the tensors with it: the
// reader does that with the data at hand.
ModelManifest manifest_from_json(const nlohmann::json& json);

}  // namespace conveyor
