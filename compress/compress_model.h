// `conveyor compress` as a library: a ModelSource in, a Conveyor model directory out
// (common/conveyor_model/). Weights are read dequantised to f32, one block at a time;
// with calibration tokens the original model runs over them alongside (the reference
// forward, block by block) to record what each linear reads, then the block is pruned,
// rescaled and quantised (layer_compressor.h) and written. The kept tensors are copied
// as stored. Memory stays at about one block of f32 weights plus the calibration
// activations, whatever the model's size.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>

#include <nlohmann/json.hpp>

#include "common/model_source.h"
#include "compress/compress_options.h"

namespace conveyor::compress {

struct LayerReport {
  std::int64_t layer = 0;
  std::int64_t layers = 0;
  double seconds = 0;      // of this block: calibration forward and compression
  nlohmann::json summary;  // sparsity, AWQ alphas and errors
};
using LayerCallback = std::function<void(const LayerReport&)>;

struct CompressResult {
  std::uint64_t bytes = 0;  // of the model written: model.safetensors and conveyor-model.json
  double seconds = 0;
  std::int64_t calibration_tokens = 0;
  nlohmann::json layers = nlohmann::json::array();  // each block's summary (of those kept)
  nlohmann::json layer_pruning;                     // layers:N: LayerPruning::json()
};

// Writes `source` compressed to `dir`. `calibration` holds token ids (empty: none);
// they are run as consecutive sequences of at most the model's context. `producer`
// goes into conveyor-model.json with the options, the results and the layers' summaries
// added. With layers:N the blocks removed first (layer_pruning.h) and the rest written
// renumbered. Throws Error(kInvalidArgument) for bad options (check_options(),
// check_layer_pruning()) or Wanda pruning without calibration, and what reading,
// quantising and writing throw.
CompressResult compress_model(const ModelSource& source, const std::string& dir,
                              const CompressOptions& options,
                              std::span<const std::int32_t> calibration,
                              nlohmann::json producer = nlohmann::json::object(),
                              const LayerCallback& on_layer = nullptr);

}  // namespace conveyor::compress
