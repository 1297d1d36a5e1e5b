// Helpers for the CUDA kernels' twin tests: the CPU backend computes each op's
// reference on the same random inputs, the CUDA backend's output is poisoned (NaN)
// before the op so that an unwritten element fails, and the two are compared by
// relative error ||gpu - cpu|| / ||cpu||.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <numeric>
#include <random>
#include <vector>

#include "common/dtype.h"
#include "common/synthetic/random_values.h"
#include "kernels/backend.h"
#include "kernels/cpu/cpu_backend.h"
#include "worker/platform/backend_factory.h"

namespace conveyor::testing {

inline bool no_gpu() {
  return !cuda_available();
}

inline std::unique_ptr<Backend> gpu_backend(double fraction = 0.25) {
  BackendRequest request;
  request.kind = BackendKind::kCuda;
  request.gpu_memory_fraction = fraction;
  return make_backend(request);
}

// A CUDA backend built with the environment variable `name` set to `value`: the backend
// reads its tuning knobs once, when it is made.
inline std::unique_ptr<Backend> gpu_backend_with(const char* name, const char* value,
                                                 double fraction = 0.25) {
  setenv(name, value, 1);
  auto backend = gpu_backend(fraction);
  unsetenv(name);
  return backend;
}

// dequantize_weights: quantised matrices as f32 (F8_R then W8A16, as on the GPU).
inline std::unique_ptr<Backend> cpu_backend(bool dequantize_weights = false) {
  CpuBackendOptions options;
  options.threads = 4;
  options.dequantize_weights = dequantize_weights;
  return make_cpu_backend(options);
}

// Fresh random inputs every run: a kernel must be right on any valid input.
inline std::mt19937& rng() {
  static std::mt19937 generator(std::random_device{}());
  return generator;
}

inline std::vector<float> random_floats(std::size_t n, float scale = 1.0f) {
  std::uniform_real_distribution<float> dist(-scale, scale);
  std::vector<float> v(n);
  for (float& x : v)
    x = dist(rng());
  return v;
}

// A tensor whose bytes the caller keeps alive.
struct OwnedTensor {
  std::vector<std::uint8_t> bytes;
  std::vector<std::uint8_t> scales;  // row-scaled types only
  TensorRef ref;
};

inline OwnedTensor random_tensor(DType dtype, std::vector<std::int64_t> shape,
                                 float stddev = 0.5f) {
  OwnedTensor t;
  std::int64_t elements = 1;
  for (auto d : shape)
    elements *= d;
  t.bytes.resize(*dtype_bytes(dtype, static_cast<std::uint64_t>(elements)));
  fill_random_values(dtype, stddev, rng()(), elements, t.bytes.data());
  const std::int64_t rows = elements / shape.back();
  t.scales.resize(static_cast<std::size_t>(rows) * dtype_row_scale_bytes(dtype));
  fill_random_row_scales(dtype, stddev, rng()(), rows, t.scales.data());
  t.ref.name = "random";
  t.ref.dtype = dtype;
  t.ref.shape = std::move(shape);
  t.ref.bytes = t.bytes;
  t.ref.scales = t.scales;
  return t;
}

inline OwnedTensor f32_tensor(const std::vector<float>& values, std::vector<std::int64_t> shape) {
  OwnedTensor t;
  t.bytes.resize(values.size() * 4);
  std::memcpy(t.bytes.data(), values.data(), t.bytes.size());
  t.ref.name = "values";
  t.ref.dtype = DType::kF32;
  t.ref.shape = std::move(shape);
  t.ref.bytes = t.bytes;
  return t;
}

// Backend memory holding `values`.
inline std::unique_ptr<BackendBuffer> upload(Backend& b, const std::vector<float>& values) {
  auto buffer = b.allocate(values.size() * 4);
  b.copy_from_host(buffer->data(), values.data(), values.size() * 4);
  return buffer;
}

inline std::unique_ptr<BackendBuffer> poisoned(Backend& b, std::size_t n) {
  return upload(b, std::vector<float>(n, std::nanf("")));
}

inline std::vector<float> download(Backend& b, const BackendBuffer& buffer, std::size_t n) {
  std::vector<float> out(n);
  b.copy_to_host(out.data(), const_cast<BackendBuffer&>(buffer).data(), n * 4);
  return out;
}

// bf16 of an f32, rounded to nearest even (finite inputs).
inline std::uint16_t to_bf16_bits(float f) {
  std::uint32_t bits = 0;
  std::memcpy(&bits, &f, 4);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<std::uint16_t>(bits >> 16);
}

inline float from_bf16_bits(std::uint16_t h) {
  const std::uint32_t bits = static_cast<std::uint32_t>(h) << 16;
  float f = 0;
  std::memcpy(&f, &bits, 4);
  return f;
}

// The values rounded to bf16 and widened back: what a bf16 store keeps.
inline std::vector<float> bf16_rounded(std::vector<float> values) {
  for (float& v : values)
    v = from_bf16_bits(to_bf16_bits(v));
  return values;
}

// ||got - want|| / ||want||; infinity when got holds a NaN or an infinity.
inline double relative_error(const std::vector<float>& got, const std::vector<float>& want) {
  double diff = 0;
  double norm = 0;
  for (std::size_t i = 0; i < want.size(); ++i) {
    if (!std::isfinite(got[i])) return INFINITY;
    diff += (static_cast<double>(got[i]) - want[i]) * (static_cast<double>(got[i]) - want[i]);
    norm += static_cast<double>(want[i]) * want[i];
  }
  return norm == 0 ? std::sqrt(diff) : std::sqrt(diff / norm);
}

// A step of `sequences` with random context lengths, each with 1 (decode) or up to
// 40 (a prefill chunk) new tokens, their blocks drawn from a shuffled pool.
struct RandomStep {
  StepLayout layout;
  std::vector<std::vector<std::int32_t>> tables;
};

inline RandomStep random_step(int sequences, std::int64_t block_size, std::int64_t num_blocks,
                              std::int32_t vocab) {
  RandomStep r;
  std::vector<std::int32_t> pool(static_cast<std::size_t>(num_blocks));
  std::iota(pool.begin(), pool.end(), 0);
  std::shuffle(pool.begin(), pool.end(), rng());
  std::size_t next_block = 0;
  r.tables.resize(static_cast<std::size_t>(sequences));
  for (int s = 0; s < sequences; ++s) {
    const std::int64_t start = static_cast<std::int64_t>(rng()() % 300);
    const std::int64_t fresh = rng()() % 2 == 0 ? 1 : 1 + static_cast<std::int64_t>(rng()() % 40);
    const std::int64_t end = start + fresh;
    auto& table = r.tables[static_cast<std::size_t>(s)];
    for (std::int64_t i = 0; i < (end + block_size - 1) / block_size; ++i)
      table.push_back(pool.at(next_block++));
    const std::int64_t first_row = r.layout.num_tokens();
    for (std::int64_t p = start; p < end; ++p) {
      r.layout.tokens.push_back(static_cast<std::int32_t>(rng()() % static_cast<unsigned>(vocab)));
      r.layout.positions.push_back(static_cast<std::int32_t>(p));
      r.layout.slots.push_back(table[static_cast<std::size_t>(p / block_size)] * block_size +
                               p % block_size);
    }
    r.layout.sequences.push_back({first_row, fresh, start, {}});
    r.layout.logit_rows.push_back(r.layout.num_tokens() - 1);
  }
  for (std::size_t s = 0; s < r.tables.size(); ++s)
    r.layout.sequences[s].block_table = r.tables[s];
  return r;
}

}  // namespace conveyor::testing
