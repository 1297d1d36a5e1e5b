// FP8 E4M3 with one f32 scale per row: the kF8_R weight format and the dynamic
// per-token activation quantisation that pairs with it in a W8A8 GEMM (each row of the
// activations scaled by its own maximum at run time, as vLLM's FP8 path does).
#pragma once

#include <cstdint>
#include <span>

#include "common/quant/quantized_tensor.h"

namespace conveyor::quant {

// Quantises `rows` rows of k values each (x f32 [rows, k]) to E4M3 codes [rows, k]
// and one scale per row: s = max|x| / 448 (1 for a row of zeros), code = e4m3(x / s),
// rounded to nearest even and saturating (common/fp8.h). A NaN stays NaN; an infinite
// value makes its row's scale infinite and its outputs NaN, as the f32 GEMM would.
// Decoding gives e4m3(code) * s, within a relative 2^-4 of x for values in E4M3's normal
// range (|x| >= 2^-6 s), within 2^-10 s (half the subnormal step) below it.
void quantize_rows_e4m3(const float* x, std::int64_t rows, std::int64_t k, std::uint8_t* codes,
                        float* scales);

// W f32 [n, k] as kF8_R: quantize_rows_e4m3 of its rows, scales stored as f32 (little-
// endian) beside the codes. Throws Error(kInvalidArgument) for a size that is not
// n * k or a non-finite value.
QuantizedTensor quantize_fp8_rows(std::span<const float> w, std::int64_t n, std::int64_t k);

}  // namespace conveyor::quant
