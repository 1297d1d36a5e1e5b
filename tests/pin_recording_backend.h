// The CPU backend with the pin hooks of a device backend: it records every host range it
// is asked to pin and whether each is still pinned, so that tests of the code that pins
// (the K/V host tier and swap buffers, streamed weights) can check what it asked for
// without a GPU. It keeps bf16 K/V too: the cache only stores bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "kernels/backend.h"
#include "kernels/cpu/cpu_backend.h"

namespace conveyor::testing {

struct PinnedRange {
  const std::byte* data = nullptr;
  std::size_t bytes = 0;
  bool read_only = false;
  std::shared_ptr<bool> live = std::make_shared<bool>(true);  // false once unpinned
};

class PinRecordingBackend final : public Backend {
 public:
  std::vector<PinnedRange> pins;  // in the order asked

  std::unique_ptr<HostPinning> pin_host_memory(void* data, std::size_t bytes) override {
    return record(data, bytes, false);
  }
  std::unique_ptr<HostPinning> pin_host_memory_read_only(const void* data,
                                                         std::size_t bytes) override {
    return record(data, bytes, true);
  }

  std::string name() const override { return "cpu-pinning"; }
  BackendCapabilities capabilities() const override {
    BackendCapabilities caps = cpu_.capabilities();
    caps.kv_dtypes = {DType::kF32, DType::kBF16};
    return caps;
  }
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

 private:
  class Handle final : public HostPinning {
   public:
    explicit Handle(std::shared_ptr<bool> live) : live_(std::move(live)) {}
    ~Handle() override { *live_ = false; }

   private:
    std::shared_ptr<bool> live_;
  };

  std::unique_ptr<HostPinning> record(const void* data, std::size_t bytes, bool read_only) {
    PinnedRange range;
    range.data = static_cast<const std::byte*>(data);
    range.bytes = bytes;
    range.read_only = read_only;
    pins.push_back(range);
    return std::make_unique<Handle>(range.live);
  }

  CpuBackend cpu_{CpuBackendOptions{1, std::nullopt, false}};
};

}  // namespace conveyor::testing
