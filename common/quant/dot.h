// a . b over k f32 values, for the calibration-side arithmetic (AWQ's error, the
// reference forward): eight interleaved f32 sums so that it vectorises, added in
// double so that long rows lose little.
#pragma once

#include <cstdint>

namespace conveyor::quant {

inline double dot(const float* a, const float* b, std::int64_t k) {
  float lanes[8] = {};
  std::int64_t i = 0;
  for (; i + 8 <= k; i += 8) {
    for (int l = 0; l < 8; ++l)
      lanes[l] += a[i + l] * b[i + l];
  }
  double sum = 0;
  for (; i < k; ++i)
    sum += static_cast<double>(a[i]) * b[i];
  for (float lane : lanes)
    sum += lane;
  return sum;
}

}  // namespace conveyor::quant
