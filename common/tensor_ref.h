// A named view of stored tensor bytes inside a mapped model file. Shapes are
// outermost dimension first, as in PyTorch: a linear weight is [out_features,
// in_features] whatever order the file format uses on disk.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/dtype.h"

namespace conveyor {

struct TensorRef {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<std::int64_t> shape;      // outermost first
  std::span<const std::uint8_t> bytes;  // exactly dtype_bytes(dtype, elements()) long
  // Per-row scales of a row-scaled format, beside its values: f16 [rows] for kQ8_R, f32
  // [rows] for kF8_R (little-endian, any alignment); empty for every other type. Rows
  // are along the innermost dimension: scale_rows() of them. (Defaulted, so that
  // aggregate initialisers that stop at `bytes` need not name it.)
  std::span<const std::uint8_t> scales = {};

  std::int64_t elements() const {
    std::int64_t n = 1;
    for (auto d : shape)
      n *= d;  // loaders have already checked the product
    return n;
  }
  // Rows along the innermost dimension: the product of the others (1 for a 1-D tensor).
  std::int64_t scale_rows() const {
    return shape.empty() || shape.back() == 0 ? 0 : elements() / shape.back();
  }
};

// "[576, 49152]", for messages.
inline std::string shape_string(std::span<const std::int64_t> shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

}  // namespace conveyor
