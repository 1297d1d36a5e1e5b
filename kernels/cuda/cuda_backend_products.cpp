#include "kernels/cuda/cuda_backend_impl.h"

namespace conveyor::cuda {

namespace {

// Profile labels: GEMMs by weight shape, decode (one row a sequence) apart from
// larger steps.
std::string gemm_label(const BackendWeight& w, std::int64_t m) {
  return "gemm " + std::to_string(w.rows()) + "x" + std::to_string(w.cols()) +
         (m <= 1024 ? " m<=1024" : " m>1024");
}

}  // namespace

void CudaBackend::quantized_gemm(const float* x, std::int64_t m, const CudaWeight& w, float* y,
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
  auto* w16 = static_cast<__half*>(scratch(4, static_cast<std::size_t>(std::min(slab, n) * k) * 2));
  for (std::int64_t first = 0; first < n; first += slab) {
    const std::int64_t count = std::min(slab, n - first);
    cuda::dequantize_rows_f16(q, first, count, w16, lane_->stream);
    lane_->gemm->run(x16, w16, CUDA_R_16F, y + first, m, count, k, accumulate, n);
  }
}

void CudaBackend::gemm(const float* x, std::int64_t m, const BackendWeight& w, float* y,
                       const GemmOptions& options) {
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

const void* CudaBackend::converted_input(const float* x, std::int64_t m, std::int64_t k,
                                         cudaDataType type, std::uint64_t op) {
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

void CudaBackend::swiglu_ffn(const float* x, std::int64_t m, const BackendWeight& gate,
                             const BackendWeight& up, const BackendWeight& down, float* gate_work,
                             float* up_work, float* out) {
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

bool CudaBackend::fp8_ffn(const float* x, std::int64_t m, const CudaWeight& g, const CudaWeight& u,
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

}  // namespace conveyor::cuda
