// What `conveyor compress` is asked to do: the method (the format the blocks' linear
// weights take), the int4 group, calibration, activation-aware scaling and pruning.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/dtype.h"

namespace conveyor::compress {

enum class Method {
  kInt8,  // q8_r: int8 per output row, f16 scales (W8A16)
  kInt4,  // q4_g128 (groups of 128) or q4_1 (groups of 32): asymmetric int4 (W4A16)
  kFp8,   // f8_r: E4M3 per output row, f32 scales (W8A8 on the CPU's emulation)
  // 16 bits: f16 (10 mantissa bits, the closer of the two 16-bit types to the f32
  // values; weights beyond 65504 are refused). With 2:4 pruning, s24_f16: the kept
  // values and their positions, half the bytes. Also a block's choice in kMixed.
  kF16,
  // Each block its own precision (kF16, kInt8 or kInt4), chosen from measured
  // sensitivities (mixed_precision.h); CompressOptions::layer_methods holds the choice.
  kMixed,
};

// "int8", "int4", "fp8", "mixed"; nullopt for anything else ("f16" is no method of its own).
std::optional<Method> method_from_name(std::string_view name);
std::string_view method_name(Method method);

enum class PruneMode {
  kNone,
  kMagnitude,  // the smallest |w| of each matrix, to the exact share
  kWanda,      // the smallest |w| * ||x_j|| of each row (needs calibration)
  kTwoFour,    // 2 of every 4 consecutive weights of a row (by |w| * ||x_j|| with calibration)
  // Whole blocks removed: the N whose output is most like their input on the calibration
  // tokens (layer_pruning.h). No weight of the blocks kept is touched.
  kLayers,
};

struct PruneSpec {
  PruneMode mode = PruneMode::kNone;
  double sparsity = 0;      // magnitude and wanda: the share zeroed; 2:4: 0.5
  std::int64_t layers = 0;  // kLayers: the blocks removed

  // Zeroes weights inside the blocks (magnitude, wanda, 2:4), as opposed to none or layers.
  bool zeroes_weights() const { return mode != PruneMode::kNone && mode != PruneMode::kLayers; }

  // "magnitude:0.3", "wanda:0.3", "2:4", "layers:2", "none".
  std::string to_string() const;
};

// Parses "magnitude:S", "wanda:S" (S in [0, 1)), "2:4" or "layers:N" (N >= 1; its upper
// bound is the model's, check_layer_pruning()). Throws Error(kInvalidArgument) saying what
// is accepted, and that modes do not combine for "layers:2,2:4" and the like.
PruneSpec parse_prune_spec(std::string_view text);

struct CompressOptions {
  Method method = Method::kInt8;
  // int4 group: 128 (q4_g128 where a row is a multiple of 128, else q4_1) or 32 (q4_1).
  std::int64_t group = 128;
  bool awq = true;  // int4 with calibration: activation-aware scales
  PruneSpec prune;
  int awq_grid = 20;  // alpha steps of the scale search
  int threads = 0;    // <= 0: one per core
  // kMixed: each block's method (kF16, kInt8 or kInt4), one per layer (of the blocks kept
  // under layers:N).
  std::vector<Method> layer_methods;
  // layers:N: each original block's similarity (block_similarity()), when already
  // measured; empty: compress_model() measures it.
  std::vector<double> block_similarity;
};

// The options block `layer` is compressed with: `options` itself, or for kMixed with
// the block's own method. Throws Error(kInvalidArgument) for kMixed without a method
// for the layer.
CompressOptions layer_options(const CompressOptions& options, std::int64_t layer);

// The format of one linear weight [n, k] under `options`, and why when it is not the
// method's first choice: int4 rows that are no multiple of 128 take q4_1; rows that
// are no multiple of 32 either take q8_r.
struct LinearFormat {
  DType dtype = DType::kQ8_R;
  std::string reason;  // empty when the method's own format
};
LinearFormat linear_format(const CompressOptions& options, std::int64_t k);

// Throws Error(kInvalidArgument) for a group other than 32 or 128, an AWQ grid below
// 1, a sparsity outside [0, 1), layers:N with N < 1, or layer methods other than f16,
// int8 and int4.
void check_options(const CompressOptions& options);

// layers:N against the model: throws Error(kInvalidArgument) unless 1 <= N <= layers - 1
// and there are calibration tokens (`calibrated`). Nothing for other modes.
void check_layer_pruning(const PruneSpec& prune, std::int64_t layers, bool calibrated);

}  // namespace conveyor::compress
