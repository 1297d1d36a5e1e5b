// Comparisons the model tests share: tensors stored alike, and how alike two logit rows
// are.
#pragma once

#include <cmath>
#include <cstring>
#include <span>

#include "common/tensor_ref.h"

namespace conveyor::testing {

inline bool same_bytes(const TensorRef& a, const TensorRef& b) {
  return a.bytes.size() == b.bytes.size() &&
         std::memcmp(a.bytes.data(), b.bytes.data(), a.bytes.size()) == 0;
}

// Pearson correlation of two logit rows.
inline double correlation(std::span<const float> a, std::span<const float> b) {
  const auto n = static_cast<double>(a.size());
  double sa = 0, sb = 0, sab = 0, saa = 0, sbb = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    sa += a[i];
    sb += b[i];
    sab += static_cast<double>(a[i]) * b[i];
    saa += static_cast<double>(a[i]) * a[i];
    sbb += static_cast<double>(b[i]) * b[i];
  }
  return (sab - sa * sb / n) / std::sqrt((saa - sa * sa / n) * (sbb - sb * sb / n));
}

}  // namespace conveyor::testing
