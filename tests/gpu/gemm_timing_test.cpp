// Timing of one llama-8b layer's GEMMs (q/k/v/o, gate/up, down) at decode batch sizes,
// for each weight format the CUDA backend runs: bf16 through cuBLASLt, and the
// compressed ones it reads as stored (q8_r W8A16, q4_g128 W4A16, f8_r W8A8). At these
// sizes a GEMM is bound by reading its weight, so the rate that matters is the
// weight bytes per second. A measurement, not a check: it runs only with
// CONVEYOR_GPU_BENCH set (scripts/gpu-check.sh sets it).
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <sstream>

#include "tests/gpu/cuda_twin.h"

using namespace conveyor;
using namespace conveyor::testing;

namespace {

bool timing_off() {
  return no_gpu() || std::getenv("CONVEYOR_GPU_BENCH") == nullptr;
}

struct LayerMatrix {
  std::int64_t n, k, copies;  // copies: q and o share a shape, as do gate and up
};

}  // namespace

TEST_CASE("compressed GEMM timing (CONVEYOR_GPU_BENCH)" * doctest::skip(timing_off())) {
  auto gpu = gpu_backend(0.3);
  const LayerMatrix layer[] = {
      {4096, 4096, 2}, {1024, 4096, 2}, {14336, 4096, 2}, {4096, 14336, 1}};
  for (const DType dtype : {DType::kBF16, DType::kQ8_R, DType::kQ4_G128, DType::kF8_R}) {
    std::vector<OwnedTensor> host;
    std::vector<std::shared_ptr<const BackendWeight>> weights;
    double weight_bytes = 0;
    for (const LayerMatrix& lm : layer) {
      host.push_back(random_tensor(dtype, {lm.n, lm.k}, 0.02f));
      weights.push_back(gpu->upload_weight(host.back().ref));
      weight_bytes += static_cast<double>(weights.back()->resident_bytes() *
                                          static_cast<std::size_t>(lm.copies));
    }
    for (const std::int64_t m : {1, 16, 64, 256}) {
      auto x = upload(*gpu, random_floats(static_cast<std::size_t>(m * 14336)));
      auto y = gpu->allocate(static_cast<std::size_t>(m * 14336) * 4);
      auto one_layer = [&] {
        for (std::size_t i = 0; i < weights.size(); ++i) {
          for (std::int64_t c = 0; c < layer[i].copies; ++c)
            gpu->gemm(x->floats(), m, *weights[i], y->floats(), {});
        }
      };
      one_layer();  // plans, scratch
      gpu->synchronize();
      std::vector<double> seconds;
      for (int rep = 0; rep < 10; ++rep) {
        const auto start = std::chrono::steady_clock::now();
        for (int layers = 0; layers < 8; ++layers)
          one_layer();
        gpu->synchronize();
        seconds.push_back(
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / 8);
      }
      std::sort(seconds.begin(), seconds.end());
      const double median = seconds[seconds.size() / 2];
      double flops = 0;
      for (const LayerMatrix& lm : layer)
        flops += 2.0 * static_cast<double>(m * lm.n * lm.k * lm.copies);
      std::ostringstream line;
      line << dtype_name(dtype) << " m=" << m << ": " << median * 1e6 << " us a layer, "
           << weight_bytes / median / 1e9 << " GB/s of weights, " << flops / median / 1e12
           << " TFLOP/s";
      MESSAGE(line.str());
    }
  }
}
