// A Conveyor model directory as a ModelSource: conveyor-model.json for the spec, the
// tokenizer and each tensor's scheme, model.safetensors (memory-mapped) for the bytes.
// Every tensor is a TensorRef of the scheme's dtype, shape and row scales, so the
// engine computes from the stored form (common/dtype.h) as from any other file's.
//
// open() checks before anything reads: the format name and version, every field of the
// JSON, the spec (validate_model_spec), the safetensors header (safetensors_file.h),
// each scheme's entries against that header (dtype and shape as tensor_scheme.h
// stores them), that no entry goes undescribed, that the tensors are those the spec
// needs (check_tensor_shapes), and the tokenizer against the vocabulary. Errors name
// the directory:
//   kNotFound     no conveyor-model.json or no model.safetensors;
//   kMalformed    invalid JSON, a missing or mistyped field, a scheme whose entries are
//                 missing from model.safetensors or stored otherwise than it says, an
//                 entry no scheme claims, tensors that disagree with the spec;
//   kUnsupported  another format version, or a dtype this build does not know;
//   kOutOfRange   a JSON file or safetensors header beyond the readers' limits.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/conveyor_model/model_manifest.h"
#include "common/hf/safetensors_file.h"
#include "common/model_source.h"
#include "common/status.h"

namespace conveyor {

class ConveyorModelSource final : public ModelSource {
 public:
  // `path`: the directory, or its conveyor-model.json.
  static Expected<std::unique_ptr<ConveyorModelSource>> open(const std::string& path);

  const ModelSpec& spec() const override { return manifest_.spec; }
  std::string format() const override;  // "conveyor-model v1"
  std::string path() const override { return dir_; }
  // Those the spec needs in canonical order, then any others in the manifest's order.
  const std::vector<TensorRef>& tensors() const override { return tensors_; }
  const std::optional<TokenizerData>& tokenizer() const override { return tokenizer_; }
  Status tokenizer_status() const override { return tokenizer_status_; }

  const ModelManifest& manifest() const { return manifest_; }

 private:
  ConveyorModelSource(std::string dir, SafetensorsFile weights)
      : dir_(std::move(dir)), weights_(std::move(weights)) {}
  void load(ModelManifest manifest);  // throws Error

  std::string dir_;
  SafetensorsFile weights_;  // owns the mapping tensors_ point into
  ModelManifest manifest_;
  std::vector<TensorRef> tensors_;
  std::optional<TokenizerData> tokenizer_;
  Status tokenizer_status_;
};

// Whether `path` is a Conveyor model directory (holds conveyor-model.json) or that file.
bool is_conveyor_model_path(const std::string& path);

// ConveyorModelSource::open as the generic interface.
Expected<std::unique_ptr<ModelSource>> open_conveyor_model(const std::string& path);

}  // namespace conveyor
