// Writing a Conveyor model directory: model.safetensors laid out from the manifest's
// tensor schemes up front, each tensor's bytes written when the caller has them (layer
// by layer: a compressor never holds the whole model), and conveyor-model.json last,
// through a temporary file and a rename. A directory whose writing stopped half-way has
// no conveyor-model.json, so no reader mistakes it for a model.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>

#include "common/conveyor_model/model_manifest.h"
#include "common/conveyor_model/safetensors_writer.h"
#include "common/tensor_ref.h"

namespace conveyor {

class ConveyorModelWriter {
 public:
  // Creates `dir` (and its parents) when missing, removes a conveyor-model.json already
  // there, and creates model.safetensors for manifest.tensors. Throws Error(kMalformed)
  // for a scheme stored_entries() refuses, Error(kInvalidArgument) for a tensor or entry
  // named twice, Error(kIo) when the files cannot be written.
  static ConveyorModelWriter create(const std::string& dir, ModelManifest manifest);

  // The manifest to be written; its notes and producer may change until finish(), the
  // tensors' layout (dtype, shape, entries) may not.
  ModelManifest& manifest() { return manifest_; }
  const std::string& directory() const { return dir_; }

  // The bytes of tensor `name`: its values (dtype_bytes() long) and, for a row-scaled
  // type, its row scales. Throws Error(kInvalidArgument) for an unknown tensor, a
  // second write, sizes that disagree with the scheme, or scales for a type without.
  void write(const std::string& name, std::span<const std::uint8_t> values,
             std::span<const std::uint8_t> scales = {});
  // The same from a view whose dtype and shape must be the scheme's.
  void write(const TensorRef& tensor);

  // Checks that every tensor was written and the layout is unchanged (Error(kInternal)
  // otherwise), flushes model.safetensors and writes conveyor-model.json.
  void finish();

 private:
  ConveyorModelWriter(std::string dir, ModelManifest manifest, SafetensorsWriter weights)
      : dir_(std::move(dir)), manifest_(std::move(manifest)), weights_(std::move(weights)) {}

  std::string dir_;
  ModelManifest manifest_;
  SafetensorsWriter weights_;
  std::map<std::string, TensorScheme> planned_;  // the layout given to create()
};

// Bytes of the regular files directly inside `path` (a directory), or of `path` itself
// (a file): a model's size on disk. 0 when it does not exist.
std::uint64_t bytes_on_disk(const std::string& path);

}  // namespace conveyor
