// The CUDA backend's class, for the files that define its members (make_cuda_backend in
// cuda_backend.h is how others get one): cuda_backend.cpp (set-up, memory, weights),
// cuda_backend_products.cpp (the GEMMs and the feed-forward block) and
// cuda_backend_steps.cpp (a step's metadata, its recording, and the ops over a step).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "common/dequantize.h"
#include "common/log/log.h"
#include "common/status.h"
#include "kernels/cpu/cpu_attention.h"
#include "kernels/cpu/step_checks.h"
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_lane.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/cuda_step.h"
#include "kernels/cuda/cuda_weight.h"
#include "kernels/cuda/cusparselt_probe.h"
#include "kernels/cuda/device_pool.h"
#include "kernels/cuda/fp8_gemm.h"
#include "kernels/cuda/fp8_ops.h"
#include "kernels/cuda/host_image.h"
#include "kernels/cuda/host_registration.h"
#include "kernels/cuda/input_copy.h"
#include "kernels/cuda/lt_gemm.h"
#include "kernels/cuda/op_profiler.h"
#include "kernels/cuda/pinned_staging.h"
#include "kernels/cuda/quant_gemm.h"
#include "kernels/cuda/sample_upload.h"
#include "kernels/cuda/step_recorder.h"

namespace conveyor::cuda {

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(const CudaBackendOptions& options);

  ~CudaBackend() override;

  // A lane with its own stream, staging, GEMM workspace and scratch; the current one.
  void add_lane() {
    lanes_.push_back(std::make_unique<cuda::CudaLane>(static_cast<int>(lanes_.size()), pool_));
    lane_ = lanes_.back().get();
  }

  std::string name() const override { return "cuda:" + std::to_string(device_); }

  // Ops come from the stage's thread and uploads from the layer streamer's, not from
  // the thread that built the backend: each entry point makes this backend's device
  // the calling thread's current one (a cheap call) before touching the stream.
  // Every op starts here. Returns the op's number: gemm tells from it whether another op
  // (on any thread) began since the last.
  std::uint64_t bind() const {
    CONVEYOR_CUDA(cudaSetDevice(device_));
    return ++ops_begun_;
  }

  BackendCapabilities capabilities() const override;

  BackendMemoryInfo memory_info() const override {
    BackendMemoryInfo info;
    info.total_bytes = pool_->capacity();
    info.available_bytes = pool_->available();
    info.weight_bytes = usage_->weight_bytes.load();
    info.buffer_bytes = usage_->buffer_bytes.load();
    return info;
  }

  std::unique_ptr<BackendBuffer> allocate(std::size_t bytes) override {
    bind();
    auto buffer = std::make_unique<CudaBuffer>(pool_, bytes, usage_, lane_->stream);
    // Zero-filled for every lane's ops, not only this one's.
    if (lanes_.size() > 1) CONVEYOR_CUDA(cudaStreamSynchronize(lane_->stream));
    return buffer;
  }

  void copy_from_host(void* dst, const void* src, std::size_t bytes) override {
    bind();
    CONVEYOR_CUDA(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, lane_->stream));
  }

  void copy_to_host(void* dst, const void* src, std::size_t bytes) override {
    bind();
    {
      const cuda::OpProfiler::Scope timing(*profiler_, "copy to host");
      CONVEYOR_CUDA(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, lane_->stream));
    }
    synchronize();
  }

  void copy_to_host_deferred(void* dst, const void* src, std::size_t bytes) override {
    bind();
    const cuda::OpProfiler::Scope timing(*profiler_, "copy to host");
    lane_->staging->download(dst, src, bytes);
  }

  void copy_to_host_async(void* dst, const void* src, std::size_t bytes) override {
    bind();
    CONVEYOR_CUDA(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, lane_->stream));
  }

  std::unique_ptr<HostPinning> pin_host_memory(void* data, std::size_t bytes) override {
    bind();
    return cuda::register_host(device_, data, bytes, cudaHostRegisterDefault);
  }

  std::unique_ptr<HostPinning> pin_host_memory_read_only(const void* data,
                                                         std::size_t bytes) override {
    bind();
    return cuda::register_host_read_only(device_, data, bytes);
  }

  void synchronize() override;

  std::unique_ptr<BackendFence> fence() override;

  // A weight's bytes, in stream order: its memory may have held a buffer that queued
  // kernels still read. Waits, so the host memory may go at once.
  // On the first lane: the layer streamer's thread calls it, and streamed layers keep
  // every step there (LlamaModel uses one lane then).
  void upload(void* dst, const void* src, std::size_t bytes) {
    bind();
    cudaStream_t stream = lanes_.front()->stream;
    CONVEYOR_CUDA(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream));
    CONVEYOR_CUDA(cudaStreamSynchronize(stream));
  }

  std::shared_ptr<const BackendWeight> upload_weight(const TensorRef& tensor) override;

  // The device type of a matrix stored as `source` (see CudaMatrixType).
  cudaDataType device_type(DType source) const;

  // How a matrix stored as `source` is kept: compressed where a GEMM reads that form
  // (and the matrices follow their source), else dense in device_type(source).
  WeightStorage storage_for(DType source, bool vector, std::int64_t rows, std::int64_t cols) const;

  // W8A16 / W4A16 from the compressed weight: quant_gemm at decode sizes; above
  // quant_gemm_max_rows_ rows the product is bound by arithmetic, not by reading W, and
  // slabs of W dequantised to f16 go through cuBLASLt instead.
  void quantized_gemm(const float* x, std::int64_t m, const CudaWeight& w, float* y,
                      bool accumulate);

  void gemm(const float* x, std::int64_t m, const BackendWeight& w, float* y,
            const GemmOptions& options) override;

  // The input rows in a weight's 16-bit type (scratch slot 0). Products of one input in a
  // row (q, k and v; gate and up) convert it once: the copy is reused when the op just
  // before this one was a dense product that converted the same rows to the same type,
  // so nothing can have written them since.
  // `op`: this product's number from bind().
  const void* converted_input(const float* x, std::int64_t m, std::int64_t k, cudaDataType type,
                              std::uint64_t op);

  void rmsnorm(float* x, const float* residual_add, std::int64_t rows, const BackendWeight& weight,
               float eps, float* out) override {
    bind();
    const cuda::OpProfiler::Scope timing(*profiler_, "rmsnorm");
    cuda::rmsnorm(x, residual_add, nullptr, rows, weight.rows(),
                  vector_data(weight, weight.rows(), "rmsnorm"), eps, out, lane_->stream);
  }

  std::unique_ptr<BackendStep> prepare_step(StepLayout layout) override;

  void use_lane(int lane) override {
    if (lane < 0 || lane >= static_cast<int>(lanes_.size())) Backend::use_lane(lane);
    // One lane: never written after construction (the layer streamer's thread reads it).
    if (lanes_.size() > 1) lane_ = lanes_[static_cast<std::size_t>(lane)].get();
  }

  bool replay_step(const BackendStep& step) override;

  void begin_step_recording(const BackendStep& step) override {
    if (!record_steps_ || step.layout().recorded_rows <= 0) return;
    bind();
    recorder_.begin(lane_->stream);
  }

  bool end_step_recording(const BackendStep& step) override {
    bind();
    return recorder_.end(lane_->index, step.layout().recorded_rows, lane_->stream);
  }

  void forget_step_recordings() override { recorder_.memory_moved(); }

  void embed(const BackendWeight& table, const BackendStep& step, float* out) override;

  void rope(float* q, float* k, const BackendStep& step, const RopeConfig& config) override;

  void store_kv(const float* k, const float* v, const BackendStep& step,
                const KvLayerView& layer) override;

  void attention(const float* q, const KvLayerView& layer, const BackendStep& step,
                 const AttentionConfig& config, float* out) override;

  void swiglu(const float* gate, const float* up, std::int64_t n, float* out) override {
    bind();
    const cuda::OpProfiler::Scope timing(*profiler_, "swiglu");
    cuda::swiglu(gate, up, n, out, lane_->stream);
  }

  void swiglu_ffn(const float* x, std::int64_t m, const BackendWeight& gate,
                  const BackendWeight& up, const BackendWeight& down, float* gate_work,
                  float* up_work, float* out) override;

  // swiglu_ffn for FP8 weights: the gate and up products write bf16 (cuBLASLt applying
  // the scales), and their swiglu is quantised per row for the down product without an f32
  // copy. False, before anything is written to `out`, where cuBLASLt will not give bf16.
  bool fp8_ffn(const float* x, std::int64_t m, const CudaWeight& g, const CudaWeight& u,
               const CudaWeight& d, float* gate_work, float* up_work, float* out, std::uint64_t op);

  void logits(const float* hidden, const BackendStep& step, const BackendWeight& norm, float eps,
              const BackendWeight& output, float* out) override;

  void sample(float* logits, std::int64_t vocab, std::span<const SampleRow> rows,
              std::int32_t* host_out) override {
    sample_deferred(logits, vocab, rows, host_out);
    synchronize();
  }

  void sample_deferred(float* logits, std::int64_t vocab, std::span<const SampleRow> rows,
                       std::int32_t* host_out) override;

  void argmax(const float* logits, std::int64_t rows, std::int64_t vocab,
              std::int32_t* host_out) override {
    argmax_deferred(logits, rows, vocab, host_out);
    synchronize();
  }

  void argmax_deferred(const float* logits, std::int64_t rows, std::int64_t vocab,
                       std::int32_t* host_out) override;

 private:
  // The current lane's scratch slot `index` (below 32) of at least `bytes`, grown
  // geometrically. A lane's ops run in order, so memory given back here is reused only
  // after its readers (with two lanes, it waits for them). Growing a slot that a
  // recording uses makes the recordings stale.
  void* scratch(std::size_t index, std::size_t bytes);

  int device_;
  CudaMatrixType matrices_;
  std::string device_name_;
  std::shared_ptr<Usage> usage_;
  std::shared_ptr<DevicePool> pool_;
  std::vector<std::unique_ptr<cuda::CudaLane>> lanes_;
  cuda::CudaLane* lane_ = nullptr;  // where ops go now; set by the thread that runs steps
  std::unique_ptr<cuda::OpProfiler> profiler_;  // on the first lane's stream
  // Decode steps replayed as CUDA graphs (CONVEYOR_CUDA_GRAPHS=1).
  bool record_steps_ = false;
  cuda::StepRecorder recorder_;
  int attention_passes_ = 2;
  mutable std::atomic<std::uint64_t> ops_begun_{0};  // the layer streamer binds too
  static constexpr int kE4M3Form = -1;               // InputCopy's form of E4M3 codes
  bool attention_tensor_cores_ = true;
  bool sample_on_device_ = true;
  int attention_stages_ = 0;
  int multiprocessors_ = 1;
  bool dequantize_at_load_ = false;
  std::int64_t quant_gemm_max_rows_ = 256;
  std::vector<float> rope_inv_freq_host_;
  std::unique_ptr<PoolBlock> rope_inv_freq_;
};

}  // namespace conveyor::cuda
