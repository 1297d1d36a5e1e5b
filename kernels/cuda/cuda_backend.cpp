#include "kernels/cuda/cuda_backend.h"

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

namespace conveyor {
namespace {

using cuda::cuda_step;
using cuda::cuda_weight;
using cuda::CudaBuffer;
using cuda::CudaStep;
using cuda::CudaWeight;
using cuda::DevicePool;
using cuda::matrix_weight;
using cuda::PoolBlock;
using cuda::Usage;
using cuda::vector_data;
using cuda::WeightStorage;

// The layer's K/V element type: f32, bf16, or FP8 codes with scales per head.
cuda::KvType kv_type(const KvLayerView& layer, const char* what) {
  switch (layer.dtype) {
    case DType::kF32:
      return cuda::KvType::kF32;
    case DType::kBF16:
      return cuda::KvType::kBf16;
    case DType::kF8_R:
      if (layer.k_scales == nullptr || layer.v_scales == nullptr || layer.num_kv_heads <= 0 ||
          layer.kv_dim % layer.num_kv_heads != 0) {
        fail(ErrorCode::kInvalidArgument,
             std::string("cuda ") + what + ": an FP8 K/V layer without its scales per head");
      }
      return cuda::KvType::kFp8;
    default:
      fail(ErrorCode::kUnsupported,
           std::string("cuda ") + what + ": K/V of type " + std::string(dtype_name(layer.dtype)));
  }
}

// Said once a process, at the first matrix kept compressed.
void report_compressed_storage() {
  static std::once_flag once;
  std::call_once(once, [] {
    log::info(logger("cuda"),
              "q8_r, q4_g128 and f8_r matrices stay compressed on the device and run as "
              "W8A16, W4A16 and W8A8 GEMMs (CONVEYOR_CUDA_DEQUANTIZE=1 widens them at load)");
  });
}

// Profile labels: GEMMs by weight shape, decode (one row a sequence) apart from
// larger steps.
std::string gemm_label(const BackendWeight& w, std::int64_t m) {
  return "gemm " + std::to_string(w.rows()) + "x" + std::to_string(w.cols()) +
         (m <= 1024 ? " m<=1024" : " m>1024");
}

std::string attention_label(const BackendStep& step) {
  const auto& sequences = step.layout().sequences;
  const bool decode = std::all_of(sequences.begin(), sequences.end(),
                                  [](const AttentionSequence& s) { return s.num_new == 1; });
  return decode ? "attention (decode)" : "attention (with prefill)";
}

// bf16 of an f32, rounded to nearest even (NaN stays NaN).
std::uint16_t to_bf16(float f) {
  std::uint32_t bits = 0;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((bits >> 16) | 0x40);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<std::uint16_t>(bits >> 16);
}

// f16 of an f32, rounded to nearest even, saturating at +-65504 as the device
// conversion does (f16 matrices hold dequantised weights, far inside that range).
std::uint16_t to_f16(float f) {
  return __half_as_ushort(__float2half_rn(std::clamp(f, -65504.0f, 65504.0f)));
}

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(const CudaBackendOptions& options)
      : device_(options.device), matrices_(options.matrices), usage_(std::make_shared<Usage>()) {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess || options.device < 0 ||
        options.device >= count) {
      cudaGetLastError();
      fail(ErrorCode::kUnavailable, "cuda: no device " + std::to_string(options.device) + " (" +
                                        std::to_string(count) + " present)");
    }
    if (!(options.memory_fraction > 0 && options.memory_fraction <= 1)) {
      fail(ErrorCode::kInvalidArgument, "cuda: memory fraction must be in (0, 1]");
    }
    CONVEYOR_CUDA(cudaSetDevice(device_));
    cudaDeviceProp prop{};
    CONVEYOR_CUDA(cudaGetDeviceProperties(&prop, device_));
    device_name_ = prop.name;
    std::size_t free_bytes = 0;
    std::size_t total_bytes = 0;
    CONVEYOR_CUDA(cudaMemGetInfo(&free_bytes, &total_bytes));
    // Leave the driver and cuBLASLt some room beside the pool.
    constexpr std::size_t kHeadroom = 512u << 20;
    const auto wanted =
        static_cast<std::size_t>(static_cast<double>(total_bytes) * options.memory_fraction);
    const std::size_t usable = free_bytes > kHeadroom ? free_bytes - kHeadroom : 0;
    pool_ = std::make_shared<DevicePool>(std::min(wanted, usable));
    add_lane();
    profiler_ = std::make_unique<cuda::OpProfiler>(lane_->stream);
    // Decode steps recorded once per size and replayed as CUDA graphs: with
    // CONVEYOR_CUDA_GRAPHS=1, and never under the profiler, whose events a graph would
    // freeze.
    if (const char* graphs = std::getenv("CONVEYOR_CUDA_GRAPHS")) {
      record_steps_ = std::string(graphs) == "1" && !profiler_->enabled();
    }
    // A tuning knob, read once: the attention kernel's passes in flight (2 or 4).
    if (const char* passes = std::getenv("CONVEYOR_CUDA_ATTENTION_PASSES")) {
      attention_passes_ = std::string(passes) == "4" ? 4 : 2;
    }
    // And which attention kernel: the tensor cores' (the default) or, with "simt", the
    // CUDA cores' for every K/V type; its stages ahead ("2", or its default).
    if (const char* kernel = std::getenv("CONVEYOR_CUDA_ATTENTION")) {
      attention_tensor_cores_ = std::string(kernel) != "simt";
    }
    // Sampling where the logits are, unless "host" (a comparison, or a fallback).
    if (const char* sampling = std::getenv("CONVEYOR_CUDA_SAMPLING")) {
      sample_on_device_ = std::string(sampling) != "host";
    }
    if (const char* stages = std::getenv("CONVEYOR_CUDA_ATTENTION_STAGES")) {
      attention_stages_ = std::string(stages) == "2" ? 2 : 0;
    }
    // Two lanes (CONVEYOR_CUDA_LANES=2): the stage's two micro-batches run at once, one's
    // attention beside the other's products. Not under the profiler, which times one
    // stream.
    if (const char* lanes = std::getenv("CONVEYOR_CUDA_LANES")) {
      if (std::string(lanes) == "2" && !profiler_->enabled()) add_lane();
    }
    lane_ = lanes_.front().get();
    multiprocessors_ = prop.multiProcessorCount;
    // Knobs for measuring, read once: dequantise compressed matrices at load as before
    // (to compare with the kernels that read them compressed), and the largest m that
    // quant_gemm takes.
    if (const char* v = std::getenv("CONVEYOR_CUDA_DEQUANTIZE")) {
      dequantize_at_load_ = std::string(v) == "1";
    }
    if (const char* v = std::getenv("CONVEYOR_CUDA_QUANT_GEMM_MAX_ROWS")) {
      quant_gemm_max_rows_ = std::max(0L, std::atol(v));
    }
  }

  ~CudaBackend() override {
    cudaSetDevice(device_);
    for (const auto& lane : lanes_)
      cudaStreamSynchronize(lane->stream);
    profiler_.reset();
    // Each lane's parts before its stream.
    lanes_.clear();
  }

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

  BackendCapabilities capabilities() const override {
    BackendCapabilities caps;
    caps.device_memory = true;
    caps.quantized_weights = false;
    caps.paged_attention = true;
    caps.threads = 1;
    // GGUF's quantised types are dequantised at upload (to f16 unless the matrices are
    // configured otherwise), and so is S24_F16 (2:4 sparse; cusparselt_probe.h). Q8_R,
    // Q4_G128 and F8_R stay compressed: W8A16, W4A16 and the W8A8 GEMM that the CPU
    // emulates (storage_for).
    caps.weight_dtypes = {DType::kF32,     DType::kF16,  DType::kBF16, DType::kQ8_0,
                          DType::kQ4_0,    DType::kQ4_1, DType::kQ4_K, DType::kQ6_K,
                          DType::kQ4_G128, DType::kQ8_R, DType::kF8_R, DType::kS24_F16};
    // kF8_R: the FP8 K/V cache, E4M3 with a scale per head and position.
    caps.kv_dtypes = {DType::kF32, DType::kBF16, DType::kF8_R};
    caps.sampling = sample_on_device_;
    caps.step_recording = record_steps_;
    caps.lanes = static_cast<int>(lanes_.size());
    return caps;
  }

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

  void synchronize() override {
    bind();
    for (const auto& lane : lanes_) {
      CONVEYOR_CUDA(cudaStreamSynchronize(lane->stream));
      lane->staging->land_all();
    }
    profiler_->collect();
  }

  std::unique_ptr<BackendFence> fence() override {
    bind();
    // The fence first: it owns the queued downloads whatever the profiler does.
    std::unique_ptr<BackendFence> fence = lane_->staging->fence();
    profiler_->collect();  // the ops that have finished
    return fence;
  }

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
  cudaDataType device_type(DType source) const {
    switch (matrices_) {
      case CudaMatrixType::kF32:
        return CUDA_R_32F;
      case CudaMatrixType::kBf16:
        return CUDA_R_16BF;
      case CudaMatrixType::kF16:
        return CUDA_R_16F;
      case CudaMatrixType::kAuto:
        break;
    }
    if (source == DType::kF32) return CUDA_R_32F;
    if (source == DType::kBF16) return CUDA_R_16BF;
    return CUDA_R_16F;
  }

  // How a matrix stored as `source` is kept: compressed where a GEMM reads that form
  // (and the matrices follow their source), else dense in device_type(source).
  WeightStorage storage_for(DType source, bool vector, std::int64_t rows, std::int64_t cols) const {
    if (vector || matrices_ != CudaMatrixType::kAuto || dequantize_at_load_) {
      return WeightStorage::kDense;
    }
    switch (source) {
      case DType::kQ8_R:
        return cuda::quant_gemm_supports(cuda::QuantLayout::kQ8Rows, cols) ? WeightStorage::kQ8Rows
                                                                           : WeightStorage::kDense;
      case DType::kQ4_G128:
        return cuda::quant_gemm_supports(cuda::QuantLayout::kQ4Groups, cols)
                   ? WeightStorage::kQ4Groups
                   : WeightStorage::kDense;
      case DType::kF8_R:  // Fp8Gemm's alignment: whole 16-byte rows of W and of y
        return cols % 16 == 0 && rows % 4 == 0 ? WeightStorage::kF8Rows : WeightStorage::kDense;
      default:
        return WeightStorage::kDense;
    }
  }

  // W8A16 / W4A16 from the compressed weight: quant_gemm at decode sizes; above
  // quant_gemm_max_rows_ rows the product is bound by arithmetic, not by reading W, and
  // slabs of W dequantised to f16 go through cuBLASLt instead.
  void quantized_gemm(const float* x, std::int64_t m, const CudaWeight& w, float* y,
                      bool accumulate) {
    const std::int64_t n = w.rows();
    const std::int64_t k = w.cols();
    auto* x16 = static_cast<__half*>(scratch(0, static_cast<std::size_t>(m * k) * 2));
    cuda::convert_to_f16(x, x16, m * k, lane_->stream);
    const cuda::QuantMatrix q = w.quant();
    if (m <= quant_gemm_max_rows_) {
      const std::size_t partial_bytes = cuda::quant_gemm_scratch_bytes(m, q, multiprocessors_);
      void* partials = scratch(3, std::max<std::size_t>(partial_bytes, 16));
      cuda::quant_gemm(x16, m, q, y, accumulate, partials, multiprocessors_, lane_->stream);
      return;
    }
    // Slabs of 64 rows at least, so that each slab's first column of y stays aligned
    // as cuBLASLt's heuristic assumes.
    constexpr std::int64_t kSlabBytes = std::int64_t{128} << 20;
    const std::int64_t slab = std::max<std::int64_t>(64, kSlabBytes / (k * 2) / 64 * 64);
    auto* w16 =
        static_cast<__half*>(scratch(4, static_cast<std::size_t>(std::min(slab, n) * k) * 2));
    for (std::int64_t first = 0; first < n; first += slab) {
      const std::int64_t count = std::min(slab, n - first);
      cuda::dequantize_rows_f16(q, first, count, w16, lane_->stream);
      lane_->gemm->run(x16, w16, CUDA_R_16F, y + first, m, count, k, accumulate, n);
    }
  }

  void gemm(const float* x, std::int64_t m, const BackendWeight& w, float* y,
            const GemmOptions& options) override {
    const std::uint64_t op = bind();
    const cuda::OpProfiler::Scope timing(*profiler_, gemm_label(w, m));
    const CudaWeight& cw = matrix_weight(w, "gemm");
    const float* bias =
        options.bias != nullptr ? vector_data(*options.bias, w.rows(), "gemm bias") : nullptr;
    if (cw.storage() == WeightStorage::kQ8Rows || cw.storage() == WeightStorage::kQ4Groups) {
      quantized_gemm(x, m, cw, y, options.accumulate);
    } else if (cw.storage() == WeightStorage::kF8Rows) {
      const std::size_t bytes = cuda::Fp8Gemm::scratch_bytes(m, w.rows(), w.cols());
      void* fp8_scratch = scratch(5, std::max<std::size_t>(bytes, 16));
      // As converted_input(): the codes of the input the product just before quantised.
      const bool quantized = lane_->quantized.holds(x, m, w.cols(), kE4M3Form, fp8_scratch, op);
      lane_->fp8_gemm->run(x, m, static_cast<const std::uint8_t*>(cw.data()),
                           static_cast<const float*>(cw.scales()), w.rows(), w.cols(), bias, y,
                           options.accumulate, fp8_scratch, quantized);
      lane_->quantized.made(x, m, w.cols(), kE4M3Form, fp8_scratch, op);
      lane_->quantized.written(y, m * w.rows());
      return;  // the bias is added with the scales
    } else if (cw.type() == CUDA_R_32F) {
      lane_->gemm->run(x, cw.data(), CUDA_R_32F, y, m, w.rows(), w.cols(), options.accumulate);
    } else {
      const void* x16 = converted_input(x, m, w.cols(), cw.type(), op);
      lane_->gemm->run(x16, cw.data(), cw.type(), y, m, w.rows(), w.cols(), options.accumulate);
      lane_->converted.written(y, m * w.rows());  // a product written over its own input
    }
    if (bias != nullptr) cuda::add_bias(y, bias, m, w.rows(), lane_->stream);
  }

  // The input rows in a weight's 16-bit type (scratch slot 0). Products of one input in a
  // row (q, k and v; gate and up) convert it once: the copy is reused when the op just
  // before this one was a dense product that converted the same rows to the same type,
  // so nothing can have written them since.
  // `op`: this product's number from bind().
  const void* converted_input(const float* x, std::int64_t m, std::int64_t k, cudaDataType type,
                              std::uint64_t op) {
    void* x16 = scratch(0, static_cast<std::size_t>(m * k) * 2);
    if (!lane_->converted.holds(x, m, k, type, x16, op)) {
      if (type == CUDA_R_16F) {
        cuda::convert_to_f16(x, static_cast<__half*>(x16), m * k, lane_->stream);
      } else {
        cuda::convert_to_bf16(x, static_cast<__nv_bfloat16*>(x16), m * k, lane_->stream);
      }
    }
    lane_->converted.made(x, m, k, type, x16, op);
    return x16;
  }

  void rmsnorm(float* x, const float* residual_add, std::int64_t rows, const BackendWeight& weight,
               float eps, float* out) override {
    bind();
    const cuda::OpProfiler::Scope timing(*profiler_, "rmsnorm");
    cuda::rmsnorm(x, residual_add, nullptr, rows, weight.rows(),
                  vector_data(weight, weight.rows(), "rmsnorm"), eps, out, lane_->stream);
  }

  std::unique_ptr<BackendStep> prepare_step(StepLayout layout) override {
    bind();
    check_step_layout(layout);
    const std::int64_t rows = layout.recorded_rows;
    if (rows <= 0 || !record_steps_) {
      return std::make_unique<CudaStep>(std::move(layout), pool_, *lane_->staging);
    }
    auto step = std::make_unique<CudaStep>(std::move(layout), pool_, *lane_->staging,
                                           recorder_.metadata(lane_->index, rows));
    if (step->moved()) recorder_.metadata_moved(lane_->index, rows);
    return step;
  }

  void use_lane(int lane) override {
    if (lane < 0 || lane >= static_cast<int>(lanes_.size())) Backend::use_lane(lane);
    // One lane: never written after construction (the layer streamer's thread reads it).
    if (lanes_.size() > 1) lane_ = lanes_[static_cast<std::size_t>(lane)].get();
  }

  bool replay_step(const BackendStep& step) override {
    const std::int64_t rows = step.layout().recorded_rows;
    if (!record_steps_ || rows <= 0) return false;
    bind();
    return recorder_.replay(lane_->index, rows, lane_->stream);
  }

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

  void embed(const BackendWeight& table, const BackendStep& step, float* out) override {
    bind();
    const cuda::OpProfiler::Scope timing(*profiler_, "embed");
    const CudaWeight& cw = matrix_weight(table, "embed");
    for (std::int32_t token : step.layout().tokens) {
      if (token < 0 || token >= table.rows()) {
        fail(ErrorCode::kInvalidArgument, "embed: token " + std::to_string(token) +
                                              " outside a vocabulary of " +
                                              std::to_string(table.rows()));
      }
    }
    if (step.layout().tokens.empty() && step.layout().num_tokens() > 0) {
      fail(ErrorCode::kInvalidArgument, "embed: the step has no token ids");
    }
    const cuda::DeviceStep& d = cuda_step(step).device();
    if (cw.storage() == WeightStorage::kQ8Rows || cw.storage() == WeightStorage::kQ4Groups) {
      cuda::embed_quant(cw.quant(), d.tokens, d.num_tokens, out, lane_->stream);
    } else if (cw.storage() == WeightStorage::kF8Rows) {
      cuda::embed_fp8_rows(static_cast<const std::uint8_t*>(cw.data()),
                           static_cast<const float*>(cw.scales()), table.cols(), d.tokens,
                           d.num_tokens, out, lane_->stream);
    } else if (cw.type() == CUDA_R_32F) {
      cuda::embed_f32(cw.floats(), d, table.cols(), out, lane_->stream);
    } else if (cw.type() == CUDA_R_16F) {
      cuda::embed_f16(static_cast<const __half*>(cw.data()), d, table.cols(), out, lane_->stream);
    } else {
      cuda::embed_bf16(static_cast<const __nv_bfloat16*>(cw.data()), d, table.cols(), out,
                       lane_->stream);
    }
  }

  void rope(float* q, float* k, const BackendStep& step, const RopeConfig& config) override {
    bind();
    const cuda::OpProfiler::Scope timing(*profiler_, "rope");
    if (static_cast<std::int64_t>(config.inv_freq.size()) * 2 != config.head_dim) {
      fail(ErrorCode::kInvalidArgument, "rope: inv_freq does not cover head_dim");
    }
    // The table is per model; keep the last one uploaded (every layer passes the same).
    if (config.inv_freq != rope_inv_freq_host_) {
      // Every lane reads the table: with two, the old one goes only once neither does,
      // and the new one is in place before either reads it.
      if (lanes_.size() > 1) synchronize();
      rope_inv_freq_ = std::make_unique<PoolBlock>(pool_, config.inv_freq.size() * 4, "RoPE table");
      CONVEYOR_CUDA(cudaMemcpyAsync(rope_inv_freq_->data(), config.inv_freq.data(),
                                    config.inv_freq.size() * 4, cudaMemcpyHostToDevice,
                                    lane_->stream));
      if (lanes_.size() > 1) CONVEYOR_CUDA(cudaStreamSynchronize(lane_->stream));
      rope_inv_freq_host_ = config.inv_freq;
    }
    cuda::DeviceRope r;
    r.inv_freq = static_cast<const float*>(rope_inv_freq_->data());
    r.num_heads = static_cast<std::int32_t>(config.num_heads);
    r.num_kv_heads = static_cast<std::int32_t>(config.num_kv_heads);
    r.head_dim = static_cast<std::int32_t>(config.head_dim);
    r.interleaved = config.pairing != RopePairing::kHalfSplit;
    cuda::rope(q, k, cuda_step(step).device(), r, lane_->stream);
  }

  void store_kv(const float* k, const float* v, const BackendStep& step,
                const KvLayerView& layer) override {
    bind();
    const cuda::OpProfiler::Scope timing(*profiler_, "store_kv");
    check_kv_slots(step.layout().slots, layer);
    cuda::DeviceKv cache;
    cache.k = layer.k;
    cache.v = layer.v;
    cache.k_scales = static_cast<float*>(layer.k_scales);
    cache.v_scales = static_cast<float*>(layer.v_scales);
    cache.kv_dim = layer.kv_dim;
    cache.num_kv_heads = static_cast<std::int32_t>(layer.num_kv_heads);
    cache.type = kv_type(layer, "store_kv");
    cuda::store_kv(k, v, cuda_step(step).device(), cache, lane_->stream);
  }

  void attention(const float* q, const KvLayerView& layer, const BackendStep& step,
                 const AttentionConfig& config, float* out) override {
    bind();
    const cuda::OpProfiler::Scope timing(*profiler_, attention_label(step));
    cpu::check_attention_inputs(layer, step.layout().sequences, config);
    if (config.head_dim > cuda::kMaxHeadDim ||
        config.num_heads / config.num_kv_heads > cuda::kMaxGroup) {
      fail(ErrorCode::kUnsupported,
           "cuda attention: head_dim " + std::to_string(config.head_dim) + " and " +
               std::to_string(config.num_heads / config.num_kv_heads) +
               " query heads per K/V head; at most " + std::to_string(cuda::kMaxHeadDim) + " and " +
               std::to_string(cuda::kMaxGroup));
    }
    cuda::DeviceAttention a;
    a.num_heads = static_cast<std::int32_t>(config.num_heads);
    a.num_kv_heads = static_cast<std::int32_t>(config.num_kv_heads);
    a.head_dim = static_cast<std::int32_t>(config.head_dim);
    a.scale = config.scale;
    a.sliding_window = static_cast<std::int32_t>(config.sliding_window);
    a.block_size = static_cast<std::int32_t>(layer.block_size);
    a.kv_dim = layer.kv_dim;
    a.kv_type = kv_type(layer, "attention");
    if (a.kv_type == cuda::KvType::kFp8 && layer.num_kv_heads != config.num_kv_heads) {
      fail(ErrorCode::kInvalidArgument, "cuda attention: the FP8 K/V layer's scales cover " +
                                            std::to_string(layer.num_kv_heads) + " heads, not " +
                                            std::to_string(config.num_kv_heads));
    }
    a.k_scales = static_cast<const float*>(layer.k_scales);
    a.v_scales = static_cast<const float*>(layer.v_scales);
    a.passes = attention_passes_;
    a.tensor_cores = attention_tensor_cores_;
    a.stages = attention_stages_;
    cuda::paged_attention(q, layer.k, layer.v, cuda_step(step).device(), a, out, lane_->stream);
  }

  void swiglu(const float* gate, const float* up, std::int64_t n, float* out) override {
    bind();
    const cuda::OpProfiler::Scope timing(*profiler_, "swiglu");
    cuda::swiglu(gate, up, n, out, lane_->stream);
  }

  void swiglu_ffn(const float* x, std::int64_t m, const BackendWeight& gate,
                  const BackendWeight& up, const BackendWeight& down, float* gate_work,
                  float* up_work, float* out) override {
    const CudaWeight& g = matrix_weight(gate, "swiglu_ffn");
    const CudaWeight& u = matrix_weight(up, "swiglu_ffn");
    const CudaWeight& d = matrix_weight(down, "swiglu_ffn");
    const auto bf16 = [](const CudaWeight& w) {
      return w.storage() == WeightStorage::kDense && w.type() == CUDA_R_16BF;
    };
    const auto fp8 = [](const CudaWeight& w) { return w.storage() == WeightStorage::kF8Rows; };
    const bool all_bf16 = bf16(g) && bf16(u) && bf16(d);
    const bool all_fp8 = fp8(g) && fp8(u) && fp8(d);
    if (!all_bf16 && !all_fp8) {
      Backend::swiglu_ffn(x, m, gate, up, down, gate_work, up_work, out);
      return;
    }
    const std::int64_t ff = gate.rows();
    const std::int64_t hidden = gate.cols();
    if (up.rows() != ff || up.cols() != hidden || down.rows() != hidden || down.cols() != ff) {
      fail(ErrorCode::kInvalidArgument, "swiglu_ffn: gate " + gate.name() + ", up " + up.name() +
                                            " and down " + down.name() + " do not fit together");
    }
    const std::uint64_t op = bind();
    if (all_fp8) {
      if (!fp8_ffn(x, m, g, u, d, gate_work, up_work, out, op))
        Backend::swiglu_ffn(x, m, gate, up, down, gate_work, up_work, out);
      return;
    }
    // bf16 all the way from the input's conversion to the down product's input: the
    // products write bf16 (each rounded once from its f32 sums) into the workspaces,
    // swiglu reads and writes bf16 in place, and the down product reads it as it is.
    auto* gate16 = reinterpret_cast<__nv_bfloat16*>(gate_work);
    auto* up16 = reinterpret_cast<__nv_bfloat16*>(up_work);
    const void* x16 = nullptr;
    {
      // The input's conversion counts with the gate product, as in gemm().
      const cuda::OpProfiler::Scope timing(*profiler_, gemm_label(gate, m));
      x16 = converted_input(x, m, hidden, CUDA_R_16BF, op);
      lane_->gemm->run_narrow(x16, g.data(), CUDA_R_16BF, gate16, m, ff, hidden);
    }
    {
      const cuda::OpProfiler::Scope timing(*profiler_, gemm_label(up, m));
      lane_->gemm->run_narrow(x16, u.data(), CUDA_R_16BF, up16, m, ff, hidden);
    }
    {
      const cuda::OpProfiler::Scope timing(*profiler_, "swiglu");
      cuda::swiglu_bf16(gate16, up16, m * ff, gate16, lane_->stream);
    }
    const cuda::OpProfiler::Scope timing(*profiler_, gemm_label(down, m));
    lane_->gemm->run(gate16, d.data(), CUDA_R_16BF, out, m, hidden, ff, true);
  }

  // swiglu_ffn for FP8 weights: the gate and up products write bf16 (cuBLASLt applying
  // the scales), and their swiglu is quantised per row for the down product without an f32
  // copy. False, before anything is written to `out`, where cuBLASLt will not give bf16.
  bool fp8_ffn(const float* x, std::int64_t m, const CudaWeight& g, const CudaWeight& u,
               const CudaWeight& d, float* gate_work, float* up_work, float* out,
               std::uint64_t op) {
    const std::int64_t ff = g.rows();
    const std::int64_t hidden = g.cols();
    auto* gate16 = reinterpret_cast<__nv_bfloat16*>(gate_work);
    auto* up16 = reinterpret_cast<__nv_bfloat16*>(up_work);
    void* in_scratch =
        scratch(5, std::max<std::size_t>(cuda::Fp8Gemm::scratch_bytes(m, ff, hidden), 16));
    const bool quantized = lane_->quantized.holds(x, m, hidden, kE4M3Form, in_scratch, op);
    lane_->quantized.forget();  // the slot ends holding the intermediate's codes
    {
      const cuda::OpProfiler::Scope timing(*profiler_, gemm_label(g, m));
      if (!lane_->fp8_gemm->run_narrow(x, m, static_cast<const std::uint8_t*>(g.data()),
                                       static_cast<const float*>(g.scales()), ff, hidden, gate16,
                                       in_scratch, quantized))
        return false;
    }
    {
      const cuda::OpProfiler::Scope timing(*profiler_, gemm_label(u, m));
      if (!lane_->fp8_gemm->run_narrow(x, m, static_cast<const std::uint8_t*>(u.data()),
                                       static_cast<const float*>(u.scales()), ff, hidden, up16,
                                       in_scratch, true))
        return false;
    }
    // The down product's input: silu(gate) * up quantised straight into its scratch.
    void* down_scratch =
        scratch(5, std::max<std::size_t>(cuda::Fp8Gemm::scratch_bytes(m, hidden, ff), 16));
    auto* codes = static_cast<std::uint8_t*>(down_scratch);
    auto* scales = reinterpret_cast<float*>(codes + cuda::Fp8Gemm::x_scales_offset(m, ff));
    {
      const cuda::OpProfiler::Scope timing(*profiler_, "swiglu");
      cuda::quantize_swiglu_rows_e4m3(gate16, up16, m, ff, codes, scales, lane_->stream);
    }
    const cuda::OpProfiler::Scope timing(*profiler_, gemm_label(d, m));
    lane_->fp8_gemm->run(nullptr, m, static_cast<const std::uint8_t*>(d.data()),
                         static_cast<const float*>(d.scales()), hidden, ff, nullptr, out, true,
                         down_scratch, true);
    return true;
  }

  void logits(const float* hidden, const BackendStep& step, const BackendWeight& norm, float eps,
              const BackendWeight& output, float* out) override {
    bind();
    const std::int64_t width = output.cols();
    const auto rows = static_cast<std::int64_t>(step.layout().logit_rows.size());
    if (rows == 0) return;
    const float* weight = vector_data(norm, width, "logits norm");
    // Gather, norm and project only the wanted rows. The norm reads the residual stream
    // through the row index and does not write it (no residual add).
    auto* normed = static_cast<float*>(scratch(1, static_cast<std::size_t>(rows * width) * 4));
    {
      const cuda::OpProfiler::Scope timing(*profiler_, "logits norm");
      cuda::rmsnorm(const_cast<float*>(hidden), nullptr, cuda_step(step).device().logit_rows, rows,
                    width, weight, eps, normed, lane_->stream);
    }
    gemm(normed, rows, output, out, {});
  }

  void sample(float* logits, std::int64_t vocab, std::span<const SampleRow> rows,
              std::int32_t* host_out) override {
    sample_deferred(logits, vocab, rows, host_out);
    synchronize();
  }

  void sample_deferred(float* logits, std::int64_t vocab, std::span<const SampleRow> rows,
                       std::int32_t* host_out) override {
    bind();
    const cuda::OpProfiler::Scope timing(*profiler_, "sample");
    if (rows.empty()) return;
    // The rows and their histories in one image, one copy in and one out.
    const cuda::SampleUpload upload = cuda::pack_sample_rows(rows);
    const cuda::HostImage& image = upload.image;
    auto* base = static_cast<std::uint8_t*>(scratch(6, image.size()));
    lane_->staging->upload(base, image.data(), image.size());
    auto* out = reinterpret_cast<std::int32_t*>(base + upload.out);
    cuda::sample_rows(
        logits, vocab, reinterpret_cast<const cuda::DeviceSampleRow*>(base + upload.rows),
        static_cast<std::int32_t>(rows.size()),
        reinterpret_cast<const std::int32_t*>(base + upload.tokens),
        reinterpret_cast<const std::int32_t*>(base + upload.counts), out, lane_->stream);
    lane_->staging->download(host_out, out, rows.size() * 4);
  }

  void argmax(const float* logits, std::int64_t rows, std::int64_t vocab,
              std::int32_t* host_out) override {
    argmax_deferred(logits, rows, vocab, host_out);
    synchronize();
  }

  void argmax_deferred(const float* logits, std::int64_t rows, std::int64_t vocab,
                       std::int32_t* host_out) override {
    bind();
    const cuda::OpProfiler::Scope timing(*profiler_, "argmax");
    if (rows == 0) return;
    auto* indices = static_cast<std::int32_t*>(scratch(2, static_cast<std::size_t>(rows) * 4));
    cuda::argmax_rows(logits, rows, vocab, indices, lane_->stream);
    lane_->staging->download(host_out, indices, static_cast<std::size_t>(rows) * 4);
  }

 private:
  // Scratch slot `index` of at least `bytes`, grown geometrically. Ops on the one
  // stream run in order, so memory given back here is reused only after its readers.
  void* scratch(std::size_t index, std::size_t bytes) {
    if (lane_->scratch.size() <= index) lane_->scratch.resize(index + 1);
    auto& slot = lane_->scratch[index];
    if (!slot || slot->bytes() < bytes) {
      recorder_.memory_moved();  // recordings that read the old slot are stale
      const std::size_t grown = std::max(bytes, slot ? slot->bytes() * 2 : bytes);
      // The pool hands memory back in one stream's order: with two lanes, this lane's
      // queued readers of the old slot finish before the other lane can take it. (While
      // recording nothing of this lane's runs but the step's upload.)
      if (slot && lanes_.size() > 1 && !recorder_.recording())
        CONVEYOR_CUDA(cudaStreamSynchronize(lane_->stream));
      slot.reset();
      slot = std::make_unique<PoolBlock>(pool_, grown, "scratch");
    }
    return slot->data();
  }

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

std::shared_ptr<const BackendWeight> CudaBackend::upload_weight(const TensorRef& tensor) {
  bind();
  if (tensor.shape.empty() || tensor.shape.size() > 2) {
    fail(ErrorCode::kUnsupported, "cuda backend: tensor " + tensor.name + " is not 1-D or 2-D");
  }
  const std::int64_t rows = tensor.shape[0];
  const std::int64_t cols = tensor.shape.size() == 2 ? tensor.shape[1] : 1;
  constexpr std::int64_t kMaxElements = std::int64_t{1} << 40;
  const auto row_bytes = dtype_bytes(tensor.dtype, static_cast<std::uint64_t>(cols));
  const auto total_bytes = rows > 0 && cols > 0 && rows <= kMaxElements / cols
                               ? dtype_bytes(tensor.dtype, static_cast<std::uint64_t>(rows * cols))
                               : std::nullopt;
  if (!row_bytes || !total_bytes || *total_bytes != tensor.bytes.size() ||
      !row_scales_match(tensor)) {
    fail(ErrorCode::kMalformed, "cuda backend: tensor " + tensor.name +
                                    " has a shape that does not match its " +
                                    std::string(dtype_name(tensor.dtype)) + " data");
  }
  if (tensor.dtype == DType::kS24_F16) cuda::report_sparse24_fallback();
  const bool vector = tensor.shape.size() == 1;
  const std::uint8_t* src = tensor.bytes.data();
  const WeightStorage storage = storage_for(tensor.dtype, vector, rows, cols);
  if (storage != WeightStorage::kDense) {
    report_compressed_storage();
    // Kept as stored: the codes, and the row scales (if any) in their own block.
    auto weight = std::make_shared<CudaWeight>(tensor, rows, cols, vector, CUDA_R_16F, storage,
                                               tensor.bytes.size(), tensor.scales.size(), device_,
                                               pool_, usage_);
    upload(weight->data(), src, tensor.bytes.size());
    if (!tensor.scales.empty())
      upload(weight->scales(), tensor.scales.data(), tensor.scales.size());
    return weight;
  }
  const cudaDataType type = vector ? CUDA_R_32F : device_type(tensor.dtype);
  const bool keep_f32 = type == CUDA_R_32F;
  const std::size_t out_elem = keep_f32 ? 4 : 2;
  auto weight = std::make_shared<CudaWeight>(
      tensor, rows, cols, vector, type, WeightStorage::kDense,
      static_cast<std::size_t>(rows * cols) * out_elem, 0, device_, pool_, usage_);
  auto* dst = static_cast<std::uint8_t*>(weight->data());
  if ((type == CUDA_R_32F && tensor.dtype == DType::kF32) ||
      (type == CUDA_R_16BF && tensor.dtype == DType::kBF16) ||
      (type == CUDA_R_16F && tensor.dtype == DType::kF16)) {
    upload(dst, src, tensor.bytes.size());
    return weight;
  }
  // Widen (dequantise) on the host a slab of rows at a time, then narrow to the
  // 16-bit type where wanted.
  const std::int64_t slab_rows = std::max<std::int64_t>(1, (8 << 20) / cols);
  std::vector<float> f32(static_cast<std::size_t>(std::min(rows, slab_rows) * cols));
  std::vector<std::uint16_t> b16(keep_f32 ? 0 : f32.size());
  for (std::int64_t begin = 0; begin < rows; begin += slab_rows) {
    const std::int64_t end = std::min(rows, begin + slab_rows);
    for (std::int64_t r = begin; r < end; ++r) {
      // A vector's elements are its "rows" here, but it has one row scale.
      dequantize_row(tensor.dtype, src + static_cast<std::uint64_t>(r) * *row_bytes,
                     f32.data() + (r - begin) * cols, cols,
                     tensor_row_scale(tensor, vector ? 0 : r));
    }
    const auto count = static_cast<std::size_t>((end - begin) * cols);
    const void* host = f32.data();
    if (type == CUDA_R_16BF) {
      for (std::size_t i = 0; i < count; ++i)
        b16[i] = to_bf16(f32[i]);
      host = b16.data();
    } else if (type == CUDA_R_16F) {
      for (std::size_t i = 0; i < count; ++i)
        b16[i] = to_f16(f32[i]);
      host = b16.data();
    }
    upload(dst + static_cast<std::size_t>(begin * cols) * out_elem, host, count * out_elem);
  }
  return weight;
}

}  // namespace

std::unique_ptr<Backend> make_cuda_backend(const CudaBackendOptions& options) {
  return std::make_unique<CudaBackend>(options);
}

}  // namespace conveyor
