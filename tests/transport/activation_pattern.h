// Activations with contents derived from (step, index), so a receiver can check every
// value it got without keeping the sender's copy.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "worker/activation_channel.h"

namespace conveyor::testing {

inline float pattern_value(std::uint64_t step, std::size_t index) {
  // Exactly representable (below 2^24), different between neighbouring steps.
  return static_cast<float>((step * 7919 + index) % 16777213);
}

inline Activations pattern_activations(std::uint64_t step, std::size_t count) {
  Activations a;
  a.step = step;
  a.hidden.resize(count);
  for (std::size_t i = 0; i < count; ++i)
    a.hidden[i] = pattern_value(step, i);
  return a;
}

// "" when `a` is the pattern for (step, count); else what differs first.
inline std::string pattern_mismatch(const Activations& a, std::uint64_t step, std::size_t count) {
  if (a.step != step)
    return "step " + std::to_string(a.step) + ", expected " + std::to_string(step);
  if (a.hidden.size() != count) {
    return "count " + std::to_string(a.hidden.size()) + ", expected " + std::to_string(count);
  }
  for (std::size_t i = 0; i < count; ++i) {
    if (a.hidden[i] != pattern_value(step, i)) return "value " + std::to_string(i) + " differs";
  }
  return "";
}

}  // namespace conveyor::testing
