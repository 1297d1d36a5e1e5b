// Helpers shared by the CPU kernel tests: random data and f32 tensors wrapped as
// TensorRefs so that they can be uploaded like model weights.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "common/tensor_ref.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/cpu_isa.h"

namespace conveyor::testing {

// Every instruction set this machine runs, the generic one first: each kernel test
// checks all of them.
inline std::vector<CpuIsa> supported_isas() {
  std::vector<CpuIsa> isas{CpuIsa::kGeneric};
  if (detect_cpu_isa() >= CpuIsa::kAvx2) isas.push_back(CpuIsa::kAvx2);
  if (detect_cpu_isa() >= CpuIsa::kAvx512) isas.push_back(CpuIsa::kAvx512);
  return isas;
}

inline CpuBackendOptions cpu_options(int threads, std::optional<CpuIsa> isa = std::nullopt) {
  CpuBackendOptions options;
  options.threads = threads;
  options.isa = isa;
  return options;
}

inline std::vector<float> random_floats(std::size_t n, std::uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v)
    x = dist(rng);
  return v;
}

// A TensorRef viewing `data` (which must outlive it).
inline TensorRef f32_tensor(const std::string& name, const std::vector<float>& data,
                            std::vector<std::int64_t> shape) {
  TensorRef t;
  t.name = name;
  t.dtype = DType::kF32;
  t.shape = std::move(shape);
  t.bytes = std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(data.data()),
                                          data.size() * sizeof(float));
  return t;
}

// A step of tokens at the given positions (slot = position), no sequences.
inline std::unique_ptr<BackendStep> positions_step(Backend& backend,
                                                   std::vector<std::int32_t> positions,
                                                   std::vector<std::int32_t> tokens = {}) {
  StepLayout layout;
  layout.tokens = std::move(tokens);
  layout.positions = std::move(positions);
  layout.slots.assign(layout.positions.begin(), layout.positions.end());
  return backend.prepare_step(std::move(layout));
}

inline float max_abs_diff(const float* a, const float* b, std::size_t n) {
  float m = 0;
  for (std::size_t i = 0; i < n; ++i)
    m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

inline bool bitwise_equal(const float* a, const float* b, std::size_t n) {
  return std::memcmp(a, b, n * sizeof(float)) == 0;
}

}  // namespace conveyor::testing
