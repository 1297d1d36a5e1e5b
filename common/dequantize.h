// Conversion of stored tensor elements (plain floats, GGUF block-quantised types and
// Conveyor's compressed formats, common/dtype.h) to f32, bit-exact with ggml's
// dequantize_row_* reference functions for the GGUF types, so that every backend starts
// from the same weights whatever format they came in.
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
// Throws Error(kInvalidArgument) when `n` is negative or not a whole number of blocks,
// or when `type` is row-scaled (its values mean nothing without their row's scale).
void dequantize_row(DType type, const std::uint8_t* src, float* dst, std::int64_t n);
// The same for elements of one row, with that row's scale (tensor_row_scale()) for a
// row-scaled type; `row_scale` is ignored by every other type.
void dequantize_row(DType type, const std::uint8_t* src, float* dst, std::int64_t n,
                    float row_scale);

// The scale of row `row` (0 <= row < tensor.scale_rows()) of a row-scaled tensor, as
// f32; 1 for every other type. The scales must match (row_scales_match()).
float tensor_row_scale(const TensorRef& tensor, std::int64_t row);

// Whether `tensor.scales` is what its dtype needs: dtype_row_scale_bytes() for each of
// its scale_rows() rows, and nothing for a type that is not row-scaled.
bool row_scales_match(const TensorRef& tensor);

// Converts a whole tensor, row by row along its innermost dimension, into `out`
// (elements() floats, same row-major order as the tensor). Throws
// Error(kInvalidArgument) when the innermost dimension is not a whole number of
// blocks, the byte span (or the row scales) does not match the shape, or `out` has the
// wrong size.
void dequantize_tensor(const TensorRef& tensor, std::span<float> out);
std::vector<float> dequantize_tensor(const TensorRef& tensor);

}  // namespace conveyor
