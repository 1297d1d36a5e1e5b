// Conversion of stored tensor elements (plain floats and GGUF block-quantised
// types) to f32, bit-exact with ggml's dequantize_row_* reference functions, so
// that every backend starts from the same weights whatever format they came in.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "common/dtype.h"
#include "common/tensor_ref.h"

namespace conveyor {

// IEEE binary16 -> binary32, exact for every input (subnormals, infinities, and
// NaNs keep sign and payload).
float fp16_to_fp32(std::uint16_t h);
// bfloat16 is the upper half of a binary32.
float bf16_to_fp32(std::uint16_t h);

// Converts `n` consecutive elements of `type` starting at `src` to f32 in `dst`.
// `n` must be a whole number of blocks (a multiple of dtype_layout(type).block_elements);
// `src` must hold dtype_bytes(type, n) bytes and `dst` n floats. `src` needs no alignment.
// Throws Error(kInvalidArgument) when `n` is negative or not a whole number of blocks.
void dequantize_row(DType type, const std::uint8_t* src, float* dst, std::int64_t n);

// Converts a whole tensor, row by row along its innermost dimension, into `out`
// (elements() floats, same row-major order as the tensor). Throws
// Error(kInvalidArgument) when the innermost dimension is not a whole number of
// blocks, the byte span does not match the shape, or `out` has the wrong size.
void dequantize_tensor(const TensorRef& tensor, std::span<float> out);
std::vector<float> dequantize_tensor(const TensorRef& tensor);

}  // namespace conveyor
