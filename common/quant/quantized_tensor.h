// A weight quantised by this library, owning its bytes as a loader would present them:
// the values (dtype_bytes(dtype, elements) long) and, for a row-scaled format, the
// per-row scales beside them (common/tensor_ref.h).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/dtype.h"
#include "common/tensor_ref.h"

namespace conveyor::quant {

struct QuantizedTensor {
  DType dtype = DType::kF32;
  std::vector<std::int64_t> shape;  // [n, k]
  std::vector<std::uint8_t> bytes;
  std::vector<std::uint8_t> scales;  // empty unless dtype is row-scaled

  // A TensorRef named `name` over these bytes; valid while this object lives unchanged.
  TensorRef view(std::string name) const;
};

// Quantises W f32 [n, k] (row-major) into `type`: kQ8_R (quantize_int8_rows), kQ4_G128
// or kQ4_1 (quantize_int4_groups), kF8_R (quantize_fp8_rows), kS24_F16
// (quantize_sparse24: W must already be 2:4), kF16 (rounded; a value beyond f16's range
// is refused). Throws Error(kInvalidArgument) for another
// type, a size that is not n * k, a k that is not a whole number of the type's groups,
// or a value that is not finite.
QuantizedTensor quantize_weight(DType type, std::span<const float> w, std::int64_t n,
                                std::int64_t k);

}  // namespace conveyor::quant
