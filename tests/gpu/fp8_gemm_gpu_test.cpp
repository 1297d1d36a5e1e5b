// The FP8 (W8A8) GEMM on the GPU (kernels/cuda/fp8_gemm.h) against its CPU twin
// cpu::gemm_fp8, and its activation quantisation bit for bit against
// quant::quantize_rows_e4m3, on fresh random inputs. With CONVEYOR_GPU_BENCH set, it also
// times a llama-8b shaped product. Skipped without a GPU; built with the CUDA backend only.
#include <doctest/doctest.h>

#ifdef CONVEYOR_WITH_CUDA

#include <cuda_runtime.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "common/fp8.h"
#include "common/quant/fp8_rows.h"
#include "kernels/cpu/cpu_fp8_gemm.h"
#include "kernels/cpu/cpu_isa.h"
#include "kernels/cpu/thread_pool.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/fp8_gemm.h"
#include "kernels/cuda/fp8_ops.h"
#include "tests/gpu/cuda_twin.h"

using namespace conveyor;
using namespace conveyor::testing;

namespace {

// cuBLASLt's workspace, as the CUDA backend gives it.
constexpr std::size_t kWorkspaceBytes = 32u << 20;

// Bound on |gpu - cpu| for one output, relative to the sum of the magnitudes of its terms
// (sx * sw * |e4m3(xq) * e4m3(wq)|). Hopper's FP8 tensor cores keep only about 14 bits of
// the sum inside each group of k-steps before cuBLASLt moves it into f32 (the DeepSeek-V3
// report measures this), so a group's sum may lose about 2^-13 of its largest term; a row
// with one large outlier concentrates nearly all of its magnitude in one term, whose group
// then dominates. On an H200 (cuBLAS 13.0) the worst seen was 1.55e-3 of the terms'
// sum (k = 1280, an outlier row), above 2^-10; 2^-8 leaves room for that, and a wrong
// layout or scale still misses it by orders of magnitude.
constexpr double kTermsBound = 0x1p-8;
// Plus a few f32 roundings of what is added after the product (y, bias).
constexpr double kRoundingBound = 1e-6;

class DeviceMemory {
 public:
  explicit DeviceMemory(std::size_t bytes) {
    CONVEYOR_CUDA(cudaMalloc(&data_, bytes > 0 ? bytes : 1));
  }
  ~DeviceMemory() { cudaFree(data_); }
  DeviceMemory(const DeviceMemory&) = delete;
  DeviceMemory& operator=(const DeviceMemory&) = delete;
  void* data() const { return data_; }
  template <typename T>
  T* as() const {
    return static_cast<T*>(data_);
  }

 private:
  void* data_ = nullptr;
};

template <typename T>
std::unique_ptr<DeviceMemory> to_device(const std::vector<T>& values) {
  auto memory = std::make_unique<DeviceMemory>(values.size() * sizeof(T));
  CONVEYOR_CUDA(
      cudaMemcpy(memory->data(), values.data(), values.size() * sizeof(T), cudaMemcpyHostToDevice));
  return memory;
}

template <typename T>
std::vector<T> to_host(const void* device, std::size_t count) {
  std::vector<T> values(count);
  CONVEYOR_CUDA(cudaMemcpy(values.data(), device, count * sizeof(T), cudaMemcpyDeviceToHost));
  return values;
}

struct Stream {
  cudaStream_t handle = nullptr;
  Stream() { CONVEYOR_CUDA(cudaStreamCreate(&handle)); }
  ~Stream() { cudaStreamDestroy(handle); }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  void synchronize() const { CONVEYOR_CUDA(cudaStreamSynchronize(handle)); }
};

std::uint32_t bits_of(float f) {
  return std::bit_cast<std::uint32_t>(f);
}

bool is_nan_code(std::uint8_t code) {
  return (code & 0x7Fu) == kFp8E4M3NaN;
}

float random_magnitude(float low_exponent, float high_exponent) {
  std::uniform_real_distribution<float> exponent(low_exponent, high_exponent);
  return std::pow(10.0f, exponent(rng()));
}

// Rows of random values, each of its own magnitude, with a row of zeros (signed) and a row
// with one value far above the rest where there are enough rows.
std::vector<float> random_rows(std::int64_t rows, std::int64_t k, float low_exponent,
                               float high_exponent, std::int64_t zero_row,
                               std::int64_t outlier_row) {
  auto values = random_floats(static_cast<std::size_t>(rows * k));
  for (std::int64_t r = 0; r < rows; ++r) {
    const float magnitude = random_magnitude(low_exponent, high_exponent);
    for (std::int64_t i = 0; i < k; ++i)
      values[static_cast<std::size_t>(r * k + i)] *= magnitude;
  }
  if (zero_row >= 0 && zero_row < rows) {
    for (std::int64_t i = 0; i < k; ++i)
      values[static_cast<std::size_t>(zero_row * k + i)] = i % 2 == 0 ? 0.0f : -0.0f;
  }
  if (outlier_row >= 0 && outlier_row < rows) {
    float* row = values.data() + outlier_row * k;
    float largest = 0;
    for (std::int64_t i = 0; i < k; ++i)
      largest = std::max(largest, std::fabs(row[i]));
    const auto at = static_cast<std::int64_t>(rng()() % static_cast<std::uint32_t>(k));
    row[at] = (rng()() % 2 == 0 ? 1000.0f : -1000.0f) * largest;
  }
  return values;
}

std::vector<float> decode_scales(const std::vector<std::uint8_t>& little_endian) {
  std::vector<float> scales(little_endian.size() / 4);
  for (std::size_t r = 0; r < scales.size(); ++r) {
    std::uint32_t bits = 0;
    for (int b = 0; b < 4; ++b)
      bits |= static_cast<std::uint32_t>(little_endian[4 * r + static_cast<std::size_t>(b)])
              << (8 * b);
    scales[r] = std::bit_cast<float>(bits);
  }
  return scales;
}

// Codes and scales from the device against quant::quantize_rows_e4m3 of the same rows:
// equal bit for bit, but for a NaN made by the quantisation itself (infinity / infinity),
// whose sign bit is each platform's own. Returns the mismatches, reporting the first.
std::int64_t quantisation_mismatches(const std::vector<float>& x, std::int64_t rows, std::int64_t k,
                                     const std::vector<std::uint8_t>& codes,
                                     const std::vector<float>& scales) {
  std::vector<std::uint8_t> want_codes(x.size());
  std::vector<float> want_scales(static_cast<std::size_t>(rows));
  quant::quantize_rows_e4m3(x.data(), rows, k, want_codes.data(), want_scales.data());
  std::int64_t mismatches = 0;
  for (std::int64_t r = 0; r < rows; ++r) {
    const auto ru = static_cast<std::size_t>(r);
    if (bits_of(scales[ru]) != bits_of(want_scales[ru])) {
      if (mismatches++ == 0)
        MESSAGE("row " << r << ": scale " << scales[ru] << ", want " << want_scales[ru]);
    }
    for (std::int64_t i = 0; i < k; ++i) {
      const auto at = static_cast<std::size_t>(r * k + i);
      const bool made_nan = is_nan_code(want_codes[at]) && !std::isnan(x[at]);
      const bool same = codes[at] == want_codes[at] || (made_nan && is_nan_code(codes[at]));
      if (!same && mismatches++ == 0) {
        MESSAGE("row " << r << ", column " << i << ": x " << x[at] << " (scale " << want_scales[ru]
                       << ") coded " << int{codes[at]} << ", want " << int{want_codes[at]});
      }
    }
  }
  return mismatches;
}

// A W8A8 problem with its CPU reference and, per output, the sum of its terms' magnitudes.
struct Problem {
  std::int64_t m, n, k;
  std::vector<float> x;
  std::vector<std::uint8_t> w_codes;
  std::vector<float> w_scales;
  std::vector<float> bias;
  std::vector<float> terms;  // [m, n]

  Problem(std::int64_t m_, std::int64_t n_, std::int64_t k_) : m(m_), n(n_), k(k_) {
    x = random_rows(m, k, -3, 3, m > 2 ? 1 : -1, m > 2 ? m - 1 : -1);
    const auto w = random_rows(n, k, -2, 2, 0, n - 1);
    const quant::QuantizedTensor quantised = quant::quantize_fp8_rows(w, n, k);
    w_codes = quantised.bytes;
    w_scales = decode_scales(quantised.scales);
    bias = random_floats(static_cast<std::size_t>(n));
    std::vector<std::uint8_t> x_codes(x.size());
    std::vector<float> x_scales(static_cast<std::size_t>(m));
    quant::quantize_rows_e4m3(x.data(), m, k, x_codes.data(), x_scales.data());
    std::vector<double> x_values(x.size());
    std::vector<double> w_values(w_codes.size());
    for (std::size_t i = 0; i < x.size(); ++i)
      x_values[i] = std::fabs(fp8_e4m3_to_fp32(x_codes[i]));
    for (std::size_t i = 0; i < w_codes.size(); ++i)
      w_values[i] = std::fabs(fp8_e4m3_to_fp32(w_codes[i]));
    terms.resize(static_cast<std::size_t>(m * n));
    for (std::int64_t i = 0; i < m; ++i) {
      for (std::int64_t j = 0; j < n; ++j) {
        double sum = 0;
        const double* xr = x_values.data() + i * k;
        const double* wr = w_values.data() + j * k;
        for (std::int64_t l = 0; l < k; ++l)
          sum += xr[l] * wr[l];
        terms[static_cast<std::size_t>(i * n + j)] = static_cast<float>(
            sum * x_scales[static_cast<std::size_t>(i)] * w_scales[static_cast<std::size_t>(j)]);
      }
    }
  }

  std::vector<float> cpu(bool with_bias, bool accumulate, std::vector<float> y) const {
    static ThreadPool pool(4);
    cpu::Fp8GemmScratch scratch;
    cpu::Fp8GemmProblem problem;
    problem.x = x.data();
    problem.y = y.data();
    problem.bias = with_bias ? bias.data() : nullptr;
    problem.m = m;
    problem.n = n;
    problem.k = k;
    problem.accumulate = accumulate;
    problem.codes = w_codes.data();
    problem.scales = w_scales.data();
    cpu::gemm_fp8(pool, detect_cpu_isa(), problem, scratch);
    return y;
  }
};

// What one mode of the GPU GEMM did over all the problems.
struct Tally {
  int runs = 0;
  int vector_runs = 0;
  std::string fallbacks;   // the runs that took the fallback
  double worst_ratio = 0;  // max |gpu - cpu| / sum|terms| over outputs with terms
  std::int64_t failures = 0;
};

void compare(const Problem& p, const std::vector<float>& gpu, const std::vector<float>& want,
             const std::vector<float>& y0, bool with_bias, bool accumulate, Tally& tally) {
  for (std::int64_t i = 0; i < p.m; ++i) {
    for (std::int64_t j = 0; j < p.n; ++j) {
      const auto at = static_cast<std::size_t>(i * p.n + j);
      const double error = std::fabs(static_cast<double>(gpu[at]) - want[at]);
      const double terms = p.terms[at];
      double added = 1.0;
      if (accumulate) added += std::fabs(y0[at]);
      if (with_bias) added += std::fabs(p.bias[static_cast<std::size_t>(j)]);
      const double bound = kTermsBound * terms + kRoundingBound * (added + std::fabs(want[at]));
      if (terms > 0) tally.worst_ratio = std::max(tally.worst_ratio, error / terms);
      if (!(error <= bound) && tally.failures++ == 0) {  // a NaN fails too
        MESSAGE(p.m << "x" << p.n << "x" << p.k << std::string(with_bias ? " +bias" : "")
                    << std::string(accumulate ? " accumulating" : "") << ": y[" << i << "][" << j
                    << "] = " << gpu[at] << ", cpu " << want[at] << ", terms " << terms);
      }
    }
  }
}

}  // namespace

TEST_CASE("cuda fp8 activation quantisation matches quantize_rows_e4m3 bit for bit" *
          doctest::skip(no_gpu())) {
  Stream stream;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  // With 448 in the row its scale is exactly 1, so these are ties of E4M3 itself: to the
  // even neighbour, in the normal range, near the top and among subnormals.
  const std::vector<float> ties = {448.0f,   1.0625f,  1.1875f,   -1.0625f, 432.0f,    400.0f,
                                   0x1p-10f, 0x3p-10f, -0x5p-10f, 0x1.1p0f, -0x1.3p-3f};
  for (const std::int64_t k : {1, 33, 4096}) {
    CAPTURE(k);
    std::vector<float> x = random_rows(24, k, -6, 6, 0, 1);
    const auto pattern = [&](std::int64_t row, const std::vector<float>& values) {
      for (std::int64_t i = 0; i < k; ++i)
        x[static_cast<std::size_t>(row * k + i)] =
            values[static_cast<std::size_t>(i) % values.size()];
    };
    pattern(2, ties);
    const auto unit = random_floats(static_cast<std::size_t>(k));
    for (std::int64_t i = 0; i < k; ++i) {
      const float u = unit[static_cast<std::size_t>(i)];
      x[static_cast<std::size_t>(3 * k + i)] = u * 1e-40f;  // subnormal f32 values
      x[static_cast<std::size_t>(4 * k + i)] = u * 3e38f;   // near f32's largest
    }
    x[static_cast<std::size_t>(5 * k)] = nan;  // a NaN keeps its sign and is no maximum
    x[static_cast<std::size_t>(5 * k + k / 2)] = -nan;
    x[static_cast<std::size_t>(6 * k + k / 3)] = inf;  // an infinite scale
    const auto rows = static_cast<std::int64_t>(x.size()) / k;
    auto x_device = to_device(x);
    DeviceMemory codes(x.size());
    DeviceMemory scales(static_cast<std::size_t>(rows) * sizeof(float));
    cuda::quantize_rows_e4m3(x_device->as<float>(), rows, k, codes.as<std::uint8_t>(),
                             scales.as<float>(), stream.handle);
    stream.synchronize();
    CHECK(quantisation_mismatches(x, rows, k, to_host<std::uint8_t>(codes.data(), x.size()),
                                  to_host<float>(scales.data(), static_cast<std::size_t>(rows))) ==
          0);
  }
}

TEST_CASE("cuda fp8 gemm matches the CPU twin, with vector scales and with the fallback" *
          doctest::skip(no_gpu())) {
  Stream stream;
  DeviceMemory workspace(kWorkspaceBytes);
  // The first lets cuBLASLt take the scales where it will; the second never asks it to.
  cuda::Fp8Gemm vector_gemm(stream.handle, workspace.data(), kWorkspaceBytes);
  cuda::Fp8Gemm fallback_gemm(stream.handle, workspace.data(), kWorkspaceBytes, false);
  Tally tallies[2];
  cuda::Fp8Gemm* gemms[2] = {&vector_gemm, &fallback_gemm};
  for (const std::int64_t k : {128, 4096}) {
    for (const std::int64_t n : {64, 200}) {
      for (const std::int64_t m : {1, 7, 64, 300}) {
        CAPTURE(m);
        CAPTURE(n);
        CAPTURE(k);
        const Problem p(m, n, k);
        auto x = to_device(p.x);
        auto w_codes = to_device(p.w_codes);
        auto w_scales = to_device(p.w_scales);
        auto bias = to_device(p.bias);
        DeviceMemory scratch(cuda::Fp8Gemm::scratch_bytes(m, n, k));
        const auto outputs = static_cast<std::size_t>(m * n);
        for (const bool with_bias : {false, true}) {
          for (const bool accumulate : {false, true}) {
            const std::vector<float> y0 =
                accumulate ? random_floats(outputs) : std::vector<float>(outputs, std::nanf(""));
            const std::vector<float> want = p.cpu(with_bias, accumulate, y0);
            for (int mode = 0; mode < 2; ++mode) {
              auto y = to_device(y0);  // NaN unless accumulating: every output must be written
              gemms[mode]->run(x->as<float>(), m, w_codes->as<std::uint8_t>(),
                               w_scales->as<float>(), n, k, with_bias ? bias->as<float>() : nullptr,
                               y->as<float>(), accumulate, scratch.data());
              stream.synchronize();
              Tally& tally = tallies[mode];
              ++tally.runs;
              if (gemms[mode]->vector_scales()) {
                ++tally.vector_runs;
              } else {
                std::ostringstream name;
                name << ' ' << m << 'x' << n << 'x' << k << (with_bias ? "+bias" : "")
                     << (accumulate ? "+acc" : "");
                tally.fallbacks += name.str();
              }
              // The activations the product used, as the CPU quantises them.
              CHECK(quantisation_mismatches(p.x, m, k,
                                            to_host<std::uint8_t>(scratch.data(), p.x.size()),
                                            to_host<float>(scratch.as<std::uint8_t>() +
                                                               cuda::Fp8Gemm::x_scales_offset(m, k),
                                                           static_cast<std::size_t>(m))) == 0);
              compare(p, to_host<float>(y->data(), outputs), want, y0, with_bias, accumulate,
                      tally);
            }
          }
        }
      }
    }
  }
  CHECK(fallback_gemm.vector_scales() == false);
  const char* names[2] = {"vector scales allowed", "fallback forced"};
  for (int mode = 0; mode < 2; ++mode) {
    const Tally& tally = tallies[mode];
    MESSAGE("fp8 gemm, " << std::string(names[mode]) << ": cuBLASLt took the scales in "
                         << tally.vector_runs << " of " << tally.runs
                         << " runs; worst |gpu - cpu| / sum|terms| " << tally.worst_ratio
                         << (mode == 0 && !tally.fallbacks.empty()
                                 ? "; fell back on" + tally.fallbacks
                                 : std::string()));
    CHECK(tally.failures == 0);
  }
}

TEST_CASE("cuda fp8 gemm timing (CONVEYOR_GPU_BENCH)" *
          doctest::skip(no_gpu() || std::getenv("CONVEYOR_GPU_BENCH") == nullptr)) {
  // A llama-8b MLP up projection over 512 tokens.
  constexpr std::int64_t m = 512;
  constexpr std::int64_t n = 14336;
  constexpr std::int64_t k = 4096;
  Stream stream;
  DeviceMemory workspace(kWorkspaceBytes);
  cuda::Fp8Gemm gemm(stream.handle, workspace.data(), kWorkspaceBytes);
  std::vector<std::uint8_t> codes(static_cast<std::size_t>(n * k));
  for (auto& code : codes) {
    code = static_cast<std::uint8_t>(rng()());
    if (is_nan_code(code)) code = static_cast<std::uint8_t>(code - 1);  // +-448
  }
  std::vector<float> scales(static_cast<std::size_t>(n));
  for (float& s : scales)
    s = random_magnitude(-4, -2);
  auto x = to_device(random_floats(static_cast<std::size_t>(m * k)));
  auto w_codes = to_device(codes);
  auto w_scales = to_device(scales);
  DeviceMemory y(static_cast<std::size_t>(m * n) * sizeof(float));
  DeviceMemory scratch(cuda::Fp8Gemm::scratch_bytes(m, n, k));
  const auto run = [&] {
    gemm.run(x->as<float>(), m, w_codes->as<std::uint8_t>(), w_scales->as<float>(), n, k, nullptr,
             y.as<float>(), false, scratch.data());
  };
  run();  // warm-up: the plan and the first launches
  stream.synchronize();
  cudaEvent_t start = nullptr;
  cudaEvent_t stop = nullptr;
  CONVEYOR_CUDA(cudaEventCreate(&start));
  CONVEYOR_CUDA(cudaEventCreate(&stop));
  std::vector<float> milliseconds;
  for (int repeat = 0; repeat < 10; ++repeat) {
    CONVEYOR_CUDA(cudaEventRecord(start, stream.handle));
    run();
    CONVEYOR_CUDA(cudaEventRecord(stop, stream.handle));
    CONVEYOR_CUDA(cudaEventSynchronize(stop));
    float elapsed = 0;
    CONVEYOR_CUDA(cudaEventElapsedTime(&elapsed, start, stop));
    milliseconds.push_back(elapsed);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::sort(milliseconds.begin(), milliseconds.end());
  const double median = (milliseconds[4] + milliseconds[5]) / 2 * 1e-3;
  const double flops = 2.0 * m * n * k;
  MESSAGE("fp8 gemm " << m << "x" << n << "x" << k << " ("
                      << std::string(gemm.vector_scales() ? "vector scales" : "fallback")
                      << ", activation quantisation included): " << median * 1e6 << " us, "
                      << flops / median / 1e12 << " TFLOP/s");
}

#endif
