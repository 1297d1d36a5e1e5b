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
// A row-scaled type (Q8_R, F8_R) gets its values only: uniform int8, or E4M3 codes of
// magnitude 0.5 .. 7.5, with fill_random_row_scales() giving the spread. S24_F16 holds
// uniform f16 values at random 2:4 positions (zeros elsewhere).
void fill_random_values(DType dtype, float stddev, std::uint64_t seed, std::int64_t elements,
                        std::uint8_t* out);

// The `rows` scales (TensorRef::scales) of a row-scaled type under which the values
// fill_random_values() writes have standard deviation about `stddev`; Q8_R's carry a
// random sign per row. Nothing for other types.
void fill_random_row_scales(DType dtype, float stddev, std::uint64_t seed, std::int64_t rows,
                            std::uint8_t* out);

}  // namespace conveyor
