// 2:4 structured-sparse weights in the kS24_F16 format (common/sparse24.h): a dense
// weight that is already 2:4 (at most 2 nonzeros in every group of 4 consecutive k
// values of a row, as apply_prune_mask() with two_four_prune_mask() leaves it) stored
// as its kept values in f16 and their positions, 18 bytes for every 16 values.
#pragma once

#include <cstdint>
#include <span>

#include "common/quant/quantized_tensor.h"

namespace conveyor::quant {

// Compresses W f32 [n, k] (row-major): each group's nonzeros, in k order, as f16
// (rounded to nearest even), and their positions; a group with fewer than two nonzeros
// is completed with its first zeros. Dequantising gives W back exactly where its values
// are f16 numbers, else each rounded to f16 (a nonzero below f16's smallest subnormal
// becomes a zero); a -0 that is not kept comes back as +0. Throws
// Error(kInvalidArgument) for a size that is not n * k, a k that is not a multiple of
// 16, a non-finite value, a value beyond f16's range, or a group with more than two
// nonzeros (naming its row and group).
QuantizedTensor quantize_sparse24(std::span<const float> w, std::int64_t n, std::int64_t k);

}  // namespace conveyor::quant
