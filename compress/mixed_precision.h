// `--method mixed`: each block's linears in the precision its measured sensitivity
// (block_sensitivity.h) earns, f16, int8 or int4, to meet a size or a quality target.
//
// The choice is greedy on cost per byte. For a size target it starts from every block
// at f16 and downgrades, one step at a time (f16 -> int8 -> int4), the block whose next
// step costs the least KL per byte saved, until the model fits. For a KL target it
// starts from every block at int4 and upgrades the block whose next step buys the most
// KL per byte added, until the estimate is within the bound. The model's KL is estimated
// as the sum of its blocks' (f16 counted as 0): additive, which holds while each block's
// error is small; the quality report (--eval) measures the real one.
//
// The size counted is the directory's model.safetensors and conveyor-model.json. The
// tensors' bytes are known from the plan; the headers and the manifest are estimated,
// then measured from the written directory, and the choice is made again (and written
// again) when the measured size moves it.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/model_source.h"
#include "compress/block_sensitivity.h"
#include "compress/compress_model.h"
#include "compress/compress_options.h"

namespace conveyor::compress {

struct MixedTarget {
  std::optional<std::uint64_t> bytes;  // model.safetensors + conveyor-model.json at most
  std::optional<double> kl;            // the sum of the blocks' KLs at most, nats
};

// Bytes a block's tensors take at each precision.
struct BlockBytes {
  std::uint64_t f16 = 0;
  std::uint64_t int8 = 0;
  std::uint64_t int4 = 0;
  std::uint64_t at(Method method) const;
};

// Per block, from the plan (compress_plan.h) of `options` (group, AWQ) with every
// block at each precision; `rest` gets the bytes of the tensors outside the blocks.
std::vector<BlockBytes> block_bytes(const ModelSource& source, const CompressOptions& options,
                                    bool calibrated, std::uint64_t& rest);

// The size target's greedy sequence: all f16 first, then one block downgraded by a
// step at a time, all int4 last (2L + 1 choices for L blocks).
std::vector<std::vector<Method>> downgrade_steps(std::span<const BlockSensitivity> sensitivity,
                                                 std::span<const BlockBytes> bytes);

// The KL target's choice: all int4 upgraded until the sum of KLs is at most `bound`
// (all f16 when nothing less meets it).
std::vector<Method> upgrade_to_kl(std::span<const BlockSensitivity> sensitivity,
                                  std::span<const BlockBytes> bytes, double bound);

// The additive estimate: the sum of the blocks' KLs at their precision.
double estimated_kl(std::span<const BlockSensitivity> sensitivity, std::span<const Method> methods);

struct MixedResult {
  CompressResult written;
  std::vector<BlockSensitivity> sensitivity;
  std::vector<Method> methods;  // per block
  double kl_estimate = 0;
  int writes = 0;       // times the directory was written (more than 1: the size moved)
  nlohmann::json json;  // sensitivities, choices, target: for the manifest and report
};

// Measures, chooses and writes `source` to `dir` with `options` (method kMixed; its
// layer_methods are filled in; with layers:N, for the blocks kept, measured and sized
// without the ones removed). Throws Error(kInvalidArgument) without calibration,
// with neither or both targets, or a size target below the all-int4 model's, and what
// measuring and compress_model() throw.
MixedResult compress_mixed(const ModelSource& source, const std::string& dir,
                           CompressOptions options, const MixedTarget& target,
                           std::span<const std::int32_t> calibration,
                           nlohmann::json producer = nlohmann::json::object(),
                           const SensitivityCallback& on_block = nullptr,
                           const LayerCallback& on_layer = nullptr);

}  // namespace conveyor::compress
