// A Backend that hands every op to a CPU backend: the base of test backends that
// change one behaviour of a device backend (pinning, deferred results) and keep the
// CPU's arithmetic.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "kernels/backend.h"
#include "kernels/cpu/cpu_backend.h"

namespace conveyor::testing {

class ForwardingBackend : public Backend {
 public:
  std::string name() const override { return "cpu-forwarding"; }
  BackendCapabilities capabilities() const override { return cpu_.capabilities(); }
  BackendMemoryInfo memory_info() const override { return cpu_.memory_info(); }
  std::unique_ptr<BackendBuffer> allocate(std::size_t bytes) override {
    return cpu_.allocate(bytes);
  }
  void copy_from_host(void* dst, const void* src, std::size_t bytes) override {
    cpu_.copy_from_host(dst, src, bytes);
  }
  void copy_to_host(void* dst, const void* src, std::size_t bytes) override {
    cpu_.copy_to_host(dst, src, bytes);
  }
  void synchronize() override {}
  std::shared_ptr<const BackendWeight> upload_weight(const TensorRef& tensor) override {
    return cpu_.upload_weight(tensor);
  }
  void gemm(const float* x, std::int64_t m, const BackendWeight& w, float* y,
            const GemmOptions& options) override {
    cpu_.gemm(x, m, w, y, options);
  }
  void rmsnorm(float* x, const float* residual_add, std::int64_t rows, const BackendWeight& weight,
               float eps, float* out) override {
    cpu_.rmsnorm(x, residual_add, rows, weight, eps, out);
  }
  std::unique_ptr<BackendStep> prepare_step(StepLayout layout) override {
    return cpu_.prepare_step(std::move(layout));
  }
  void embed(const BackendWeight& table, const BackendStep& step, float* out) override {
    cpu_.embed(table, step, out);
  }
  void rope(float* q, float* k, const BackendStep& step, const RopeConfig& config) override {
    cpu_.rope(q, k, step, config);
  }
  void store_kv(const float* k, const float* v, const BackendStep& step,
                const KvLayerView& layer) override {
    cpu_.store_kv(k, v, step, layer);
  }
  void attention(const float* q, const KvLayerView& layer, const BackendStep& step,
                 const AttentionConfig& config, float* out) override {
    cpu_.attention(q, layer, step, config, out);
  }
  void swiglu(const float* gate, const float* up, std::int64_t n, float* out) override {
    cpu_.swiglu(gate, up, n, out);
  }
  void logits(const float* hidden, const BackendStep& step, const BackendWeight& norm, float eps,
              const BackendWeight& output, float* out) override {
    cpu_.logits(hidden, step, norm, eps, output, out);
  }
  void argmax(const float* logits, std::int64_t rows, std::int64_t vocab,
              std::int32_t* host_out) override {
    cpu_.argmax(logits, rows, vocab, host_out);
  }

 protected:
  CpuBackend cpu_{CpuBackendOptions{1, std::nullopt, false}};
};

}  // namespace conveyor::testing
