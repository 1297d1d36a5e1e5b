// The CPU reference backend: block-quantised matrices (GGUF's types, Q4_G128) and Q8_R
// kept quantised, repacked for a GEMM that widens them on the fly (cpu_quant_gemm.h);
// other weights as f32 (matrices packed for the GEMM, cpu_gemm.h). Both give the same
// bits. S24_F16 (2:4 sparse) matrices keep their kept half and its positions, and the
// GEMM computes only the kept products (cpu_sparse24_gemm.h: the f32 path's values,
// and its bits but for the sign of a zero). F8_R matrices stay E4M3 for an emulated
// W8A8 GEMM (cpu_fp8_gemm.h), which quantises the activations too and so differs from
// the f32 path. Every op is multi-threaded over one persistent thread pool. Ops run
// synchronously on the calling thread and the pool; like a device stream, one backend
// takes ops from one thread at a time.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <vector>

#include "kernels/backend.h"
#include "kernels/cpu/cpu_fp8_gemm.h"
#include "kernels/cpu/cpu_isa.h"
#include "kernels/cpu/thread_pool.h"

namespace conveyor {

struct CpuBackendOptions {
  int threads = 0;            // <= 0: one per CPU this process may run on
  std::optional<CpuIsa> isa;  // default: the best the CPU supports
  // true: dequantise quantised matrices to f32 at upload (4-8x the memory and the bytes
  // read per decode step, same results); for comparing the two paths. F8_R then runs as
  // W8A16 (activations unquantised), no longer the W8A8 emulation.
  bool dequantize_weights = false;
};

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(const CpuBackendOptions& options = {});

  std::string name() const override { return "cpu"; }
  BackendCapabilities capabilities() const override;
  BackendMemoryInfo memory_info() const override;
  CpuIsa isa() const { return isa_; }

  std::unique_ptr<BackendBuffer> allocate(std::size_t bytes) override;
  void copy_from_host(void* dst, const void* src, std::size_t bytes) override;
  void copy_to_host(void* dst, const void* src, std::size_t bytes) override;
  void synchronize() override {}

  std::shared_ptr<const BackendWeight> upload_weight(const TensorRef& tensor) override;

  void gemm(const float* x, std::int64_t m, const BackendWeight& w, float* y,
            const GemmOptions& options = {}) override;
  void rmsnorm(float* x, const float* residual_add, std::int64_t rows, const BackendWeight& weight,
               float eps, float* out) override;
  std::unique_ptr<BackendStep> prepare_step(StepLayout layout) override;
  void embed(const BackendWeight& table, const BackendStep& step, float* out) override;
  void rope(float* q, float* k, const BackendStep& step, const RopeConfig& config) override;
  void store_kv(const float* k, const float* v, const BackendStep& step,
                const KvLayerView& layer) override;
  void attention(const float* q, const KvLayerView& layer, const BackendStep& step,
                 const AttentionConfig& config, float* out) override;
  void swiglu(const float* gate, const float* up, std::int64_t n, float* out) override;
  void logits(const float* hidden, const BackendStep& step, const BackendWeight& norm, float eps,
              const BackendWeight& output, float* out) override;
  void argmax(const float* logits, std::int64_t rows, std::int64_t vocab,
              std::int32_t* host_out) override;

  // Byte counters shared with the weights and buffers this backend hands out, which
  // may outlive it.
  struct Usage {
    std::atomic<std::uint64_t> weight_bytes{0};
    std::atomic<std::uint64_t> buffer_bytes{0};
  };

 private:
  ThreadPool pool_;
  CpuIsa isa_;
  bool dequantize_weights_;
  std::shared_ptr<Usage> usage_;
  std::vector<std::vector<float>> gemm_scratch_;  // per pool thread
  cpu::Fp8GemmScratch fp8_scratch_;
  std::vector<std::vector<float>> attention_scratch_;  // per pool thread
  std::vector<float> logits_rows_;                     // f32 [rows, hidden] for logits()
};

std::unique_ptr<Backend> make_cpu_backend(const CpuBackendOptions& options = {});

}  // namespace conveyor
