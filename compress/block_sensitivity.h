// How much each block's quantisation alone costs, for choosing a mixed model's
// per-block precision (mixed_precision.h): the original model runs over the calibration
// tokens (the reference forward); then, for each block and each of int8 and int4, that
// block alone is compressed as compress_layer() would (pruning and activation-aware
// scales included), dequantised back to f32, and the model runs on from that block with
// the others as loaded. The cost is the mean KL(original || changed) of the next-token
// distributions over every calibration position, in nats.
//
// The blocks' f32 weights are all held at once (every measurement runs the blocks after
// the changed one): about four bytes per parameter, unlike compress_model()'s one block.
// Cost: for L blocks, about L^2 block forwards and 2L output heads over the tokens.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "common/model_source.h"
#include "compress/compress_options.h"

namespace conveyor::compress {

struct BlockSensitivity {
  std::int64_t layer = 0;
  double kl_int8 = 0;  // mean KL with only this block in int8
  double kl_int4 = 0;  // ... in int4
};

// Called after each block's measurement.
using SensitivityCallback = std::function<void(const BlockSensitivity&, double seconds)>;

// `options` gives the int4 group, AWQ, pruning and threads (its method is ignored).
// Throws Error(kInvalidArgument) for calibration of fewer than 2 tokens, and what
// loading, the reference forward and quantisation throw.
std::vector<BlockSensitivity> measure_block_sensitivity(
    const ModelSource& source, const CompressOptions& options,
    std::span<const std::int32_t> calibration, const SensitivityCallback& on_block = nullptr);

}  // namespace conveyor::compress
