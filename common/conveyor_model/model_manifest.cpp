#include "common/conveyor_model/model_manifest.h"

#include <set>
#include <utility>

#include "common/conveyor_model/json_fields.h"
#include "common/conveyor_model/model_format.h"
#include "common/conveyor_model/model_spec_json.h"
#include "common/conveyor_model/tokenizer_data_json.h"
#include "common/status.h"

namespace conveyor {

const TensorScheme* ModelManifest::find(const std::string& name) const {
  for (const TensorScheme& t : tensors) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

TensorScheme* ModelManifest::find(const std::string& name) {
  return const_cast<TensorScheme*>(std::as_const(*this).find(name));
}

nlohmann::ordered_json manifest_to_json(const ModelManifest& m) {
  nlohmann::ordered_json tensors = nlohmann::ordered_json::array();
  for (const TensorScheme& t : m.tensors)
    tensors.push_back(tensor_scheme_to_json(t));
  // In reading order: what the file is, the model, its tensors, then the long lists.
  nlohmann::ordered_json out = {
      {"format", kConveyorModelFormat},
      {"version", kConveyorModelVersion},
      {"spec", model_spec_to_json(m.spec)},
      {"tensors", std::move(tensors)},
      {"producer", nlohmann::ordered_json(m.producer)},
  };
  if (m.tokenizer) {
    out["tokenizer"] = tokenizer_data_to_json(*m.tokenizer);
  } else {
    out["tokenizer"] = nullptr;
    out["tokenizer_note"] = bytes_to_json(m.tokenizer_note);
  }
  return out;
}

ModelManifest manifest_from_json(const nlohmann::json& json) {
  const JsonFieldReader f(json, std::string(kConveyorModelManifest));
  if (f.string("format") != kConveyorModelFormat) {
    fail(ErrorCode::kMalformed, f.path("format") + " is '" + f.string("format") + "', not '" +
                                    std::string(kConveyorModelFormat) + "'");
  }
  const std::int64_t version = f.integer("version");
  if (version != kConveyorModelVersion) {
    fail(ErrorCode::kUnsupported, f.where() + " is version " + std::to_string(version) +
                                      "; this build reads version " +
                                      std::to_string(kConveyorModelVersion));
  }
  ModelManifest m;
  m.spec = model_spec_from_json(f.field("spec"), f.path("spec"));
  if (const nlohmann::json& tok = f.field("tokenizer"); !tok.is_null()) {
    m.tokenizer = tokenizer_data_from_json(tok, f.path("tokenizer"));
  } else if (f.has("tokenizer_note")) {
    m.tokenizer_note = bytes_from_json(f.field("tokenizer_note"), f.path("tokenizer_note"));
  }
  const nlohmann::json& tensors = f.array("tensors");
  std::set<std::string> names;
  std::set<std::string> entries;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    TensorScheme t =
        tensor_scheme_from_json(tensors[i], f.path("tensors") + "[" + std::to_string(i) + "]");
    if (!names.insert(t.name).second) {
      fail(ErrorCode::kMalformed, f.where() + ": tensor '" + t.name + "' appears twice");
    }
    for (const std::string* entry : {&t.values, &t.scales}) {
      if (!entry->empty() && !entries.insert(*entry).second) {
        fail(ErrorCode::kMalformed,
             f.where() + ": safetensors entry '" + *entry + "' is claimed twice");
      }
    }
    m.tensors.push_back(std::move(t));
  }
  m.producer = f.object("producer");
  return m;
}

}  // namespace conveyor
