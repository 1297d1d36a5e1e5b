// The scheme of every tensor of a compressed model, decided before any weight is read,
// so that model.safetensors can be laid out up front and written layer by layer:
//   - the blocks' linear weights (q/k/v/o, gate/up/down) in the method's format
//     (linear_format(): q4_1 or q8_r where rows do not fit the first choice; a mixed
//     model's in its block's, layer_options());
//   - the RMSNorm weights that activation-aware scales fold into, in f32;
//   - everything else (embedding, output head tied or not, other norms, biases, GGUF's
//     rope_freqs) as the source stores it, bit for bit.
#pragma once

#include <cstdint>
#include <string>

#include "common/conveyor_model/model_manifest.h"
#include "common/model_source.h"
#include "compress/compress_options.h"

namespace conveyor::compress {

// N of a tensor named "blk.N.<suffix>"; -1 for a tensor outside the blocks.
std::int64_t block_of_tensor(const std::string& name);

// Bytes the tensor's values and scales take in model.safetensors.
std::uint64_t stored_bytes(const TensorScheme& scheme);

// `calibrated`: calibration activations will be at hand (AWQ and Wanda need them).
ModelManifest plan_compression(const ModelSource& source, const CompressOptions& options,
                               bool calibrated);

}  // namespace conveyor::compress
