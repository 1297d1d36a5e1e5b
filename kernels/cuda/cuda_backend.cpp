#include "kernels/cuda/cuda_backend_impl.h"

namespace conveyor::cuda {

namespace {

// Said once a process, at the first matrix kept compressed.
void report_compressed_storage() {
  static std::once_flag once;
  std::call_once(once, [] {
    log::info(logger("cuda"),
              "q8_r, q4_g128 and f8_r matrices stay compressed on the device and run as "
              "W8A16, W4A16 and W8A8 GEMMs (CONVEYOR_CUDA_DEQUANTIZE=1 widens them at load)");
  });
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

}  // namespace

CudaBackend::CudaBackend(const CudaBackendOptions& options)
    : device_(options.device), matrices_(options.matrices), usage_(std::make_shared<Usage>()) {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || options.device < 0 || options.device >= count) {
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

CudaBackend::~CudaBackend() {
  cudaSetDevice(device_);
  for (const auto& lane : lanes_)
    cudaStreamSynchronize(lane->stream);
  profiler_.reset();
  // Each lane's parts before its stream.
  lanes_.clear();
}

BackendCapabilities CudaBackend::capabilities() const {
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

void CudaBackend::synchronize() {
  bind();
  for (const auto& lane : lanes_) {
    CONVEYOR_CUDA(cudaStreamSynchronize(lane->stream));
    lane->staging->land_all();
  }
  profiler_->collect();
}

std::unique_ptr<BackendFence> CudaBackend::fence() {
  bind();
  // The fence first: it owns the queued downloads whatever the profiler does.
  std::unique_ptr<BackendFence> fence = lane_->staging->fence();
  profiler_->collect();  // the ops that have finished
  return fence;
}

cudaDataType CudaBackend::device_type(DType source) const {
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

WeightStorage CudaBackend::storage_for(DType source, bool vector, std::int64_t rows,
                                       std::int64_t cols) const {
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

void* CudaBackend::scratch(std::size_t index, std::size_t bytes) {
  if (lane_->scratch.size() <= index) lane_->scratch.resize(index + 1);
  auto& slot = lane_->scratch[index];
  const std::uint32_t bit = 1u << index;
  if (slot && slot->bytes() < bytes && ((lane_->recorded_scratch & bit) || recorder_.recording())) {
    recorder_.memory_moved();  // recordings that read the old slot are stale
  }
  if (recorder_.recording()) lane_->recorded_scratch |= bit;
  if (!slot || slot->bytes() < bytes) {
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

}  // namespace conveyor::cuda

namespace conveyor {

std::unique_ptr<Backend> make_cuda_backend(const CudaBackendOptions& options) {
  return std::make_unique<cuda::CudaBackend>(options);
}

}  // namespace conveyor
