// Random tensor contents in every stored dtype, generated fast and reproducibly: the
// bytes depend only on the seed, so a model built on any number of threads is the
// same model.
#pragma once

#include <cstdint>

#include "common/dtype.h"

namespace conveyor {

// splitmix64's finaliser: a bijective 64-bit hash, for deriving independent seeds.
std::uint64_t mix64(std::uint64_t x);

// Writes `elements` random values of `dtype` to `out`, which must hold
// dtype_bytes(dtype, elements) bytes; `elements` must be a whole number of the dtype's
// blocks. The values (after dequantize_row) have mean about 0 and standard deviation
// about `stddev`. Plain float types hold uniform values; the block-quantised types hold
// valid blocks of uniform random quants under one scale magnitude, with a random sign
// per block. F32, F16 and BF16 from the same seed hold the same values, rounded to each.
void fill_random_values(DType dtype, float stddev, std::uint64_t seed, std::int64_t elements,
                        std::uint8_t* out);

}  // namespace conveyor
