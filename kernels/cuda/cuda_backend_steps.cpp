#include "kernels/cuda/cuda_backend_impl.h"

namespace conveyor::cuda {

namespace {

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

std::string attention_label(const BackendStep& step) {
  const auto& sequences = step.layout().sequences;
  const bool decode = std::all_of(sequences.begin(), sequences.end(),
                                  [](const AttentionSequence& s) { return s.num_new == 1; });
  return decode ? "attention (decode)" : "attention (with prefill)";
}

}  // namespace

std::unique_ptr<BackendStep> CudaBackend::prepare_step(StepLayout layout) {
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

bool CudaBackend::replay_step(const BackendStep& step) {
  const std::int64_t rows = step.layout().recorded_rows;
  if (!record_steps_ || rows <= 0) return false;
  bind();
  return recorder_.replay(lane_->index, rows, lane_->stream);
}

void CudaBackend::embed(const BackendWeight& table, const BackendStep& step, float* out) {
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

void CudaBackend::rope(float* q, float* k, const BackendStep& step, const RopeConfig& config) {
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
    recorder_.memory_moved();  // recordings hold the old table's address
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

void CudaBackend::store_kv(const float* k, const float* v, const BackendStep& step,
                           const KvLayerView& layer) {
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

void CudaBackend::attention(const float* q, const KvLayerView& layer, const BackendStep& step,
                            const AttentionConfig& config, float* out) {
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

void CudaBackend::logits(const float* hidden, const BackendStep& step, const BackendWeight& norm,
                         float eps, const BackendWeight& output, float* out) {
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

void CudaBackend::sample_deferred(float* logits, std::int64_t vocab,
                                  std::span<const SampleRow> rows, std::int32_t* host_out) {
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

void CudaBackend::argmax_deferred(const float* logits, std::int64_t rows, std::int64_t vocab,
                                  std::int32_t* host_out) {
  bind();
  const cuda::OpProfiler::Scope timing(*profiler_, "argmax");
  if (rows == 0) return;
  auto* indices = static_cast<std::int32_t*>(scratch(2, static_cast<std::size_t>(rows) * 4));
  cuda::argmax_rows(logits, rows, vocab, indices, lane_->stream);
  lane_->staging->download(host_out, indices, static_cast<std::size_t>(rows) * 4);
}

}  // namespace conveyor::cuda
