// Compressing one block's seven linear weights (q, k, v, o, gate, up, down), in order:
//   1. pruning (when asked): the mask of each weight from its f32 values (and, for
//      Wanda and calibrated 2:4, the norms of its input channels), applied in place;
//   2. activation-aware scales (int4 with calibration): one search for q/k/v (input:
//      the attention norm's output; scales folded into the attention RMSNorm weight),
//      one for gate/up (folded into the FFN RMSNorm weight), one for down (input:
//      silu(gate) * up, so its scales fold into up's rows); o stays plain, as its input
//      (the attention output) has no per-channel weight to fold into;
//   3. quantisation of every weight into its planned format.
// The block computes the same function after steps 2's rescaling as before it (up to
// f32 rounding): only the quantisation error moves, towards the channels that matter less.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/model_spec.h"
#include "common/quant/quantized_tensor.h"
#include "compress/compress_options.h"
#include "compress/f32_layer.h"
#include "compress/reference_forward.h"
#include "kernels/cpu/thread_pool.h"

namespace conveyor::compress {

// The seven linears of a block, in the order results list them.
inline constexpr std::array<const char*, 7> kLinearSuffixes = {
    "attn_q.weight",   "attn_k.weight", "attn_v.weight",  "attn_output.weight",
    "ffn_gate.weight", "ffn_up.weight", "ffn_down.weight"};

struct CompressedLinear {
  std::string name;  // canonical
  quant::QuantizedTensor tensor;
  nlohmann::json notes;  // for the scheme: format, pruning, AWQ
};

struct CompressedLayer {
  std::vector<CompressedLinear> linears;  // kLinearSuffixes order
  // The RMSNorm weights with AWQ scales folded in; empty where no scales were folded.
  std::vector<float> attn_norm;
  std::vector<float> ffn_norm;
  nlohmann::json summary = nlohmann::json::object();  // per layer, for progress and reports
};

// Compresses `w` (changed in place: pruned, rescaled) with `inputs` (what the block's
// linears read on the calibration tokens, `tokens` rows; null without calibration).
// Throws Error(kInvalidArgument) for Wanda pruning without inputs, 2:4 on rows that are
// no multiple of 4, and what the quantisers throw (a non-finite weight).
CompressedLayer compress_layer(F32Layer& w, const LinearInputs* inputs, std::int64_t tokens,
                               const ModelSpec& spec, const CompressOptions& options,
                               ThreadPool& pool);

// Whether the int4 scale search runs for a weight group reading rows of k values.
bool awq_applies(const CompressOptions& options, bool calibrated, std::int64_t k);

}  // namespace conveyor::compress
