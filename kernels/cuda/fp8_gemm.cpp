#include "kernels/cuda/fp8_gemm.h"

#include <string>

#include "common/status.h"
#include "kernels/cuda/cublaslt_api.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/fp8_ops.h"

// Outer-vector scales arrived in cuBLAS 12.9; built against older headers, every plan
// takes the fallback.
#if CUBLAS_VERSION >= 120900
#define CONVEYOR_FP8_OUTER_VECTOR_SCALES 1
#else
#define CONVEYOR_FP8_OUTER_VECTOR_SCALES 0
#endif

namespace conveyor::cuda {
namespace {

// cuBLASLt's default (and largest) alignment preference; the scratch's parts start on it.
constexpr std::size_t kAlignment = 256;

std::size_t aligned(std::size_t bytes) {
  return (bytes + kAlignment - 1) / kAlignment * kAlignment;
}

// The largest power of two up to 256 that divides the address: the alignment the chosen
// algorithm may assume (an algorithm needing more is refused at run time).
std::uint32_t alignment_of(const void* pointer) {
  const auto address = reinterpret_cast<std::uintptr_t>(pointer);
  auto alignment = static_cast<std::uint32_t>(kAlignment);
  while (alignment > 1 && address % alignment != 0)
    alignment /= 2;
  return alignment;
}

std::string shape_text(std::int64_t m, std::int64_t n, std::int64_t k) {
  return std::to_string(m) + "x" + std::to_string(n) + "x" + std::to_string(k);
}

// Both are device pointers, read when the matmul runs.
void set_scale_pointers(cublasLtMatmulDesc_t desc, const float* w_scales, const float* x_scales) {
  const void* a_scales = w_scales;  // cuBLAS's M = n values: one per row of W
  const void* b_scales = x_scales;  // cuBLAS's N = m values: one per row of x
  CONVEYOR_CUBLAS(cublaslt().matmul_desc_set_attribute(desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER,
                                                       &a_scales, sizeof(a_scales)));
  CONVEYOR_CUBLAS(cublaslt().matmul_desc_set_attribute(desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER,
                                                       &b_scales, sizeof(b_scales)));
}

}  // namespace

Fp8Gemm::Fp8Gemm(cudaStream_t stream, void* workspace, std::size_t workspace_bytes,
                 bool try_vector_scales)
    : stream_(stream),
      workspace_(workspace),
      workspace_bytes_(workspace_bytes),
      try_vector_scales_(try_vector_scales && CONVEYOR_FP8_OUTER_VECTOR_SCALES) {
  CONVEYOR_CUBLAS(cublaslt().create(&handle_));
}

Fp8Gemm::~Fp8Gemm() {
  for (auto& [key, plan] : plans_)
    destroy(plan);
  cublaslt().destroy(handle_);
}

std::size_t Fp8Gemm::x_scales_offset(std::int64_t m, std::int64_t k) {
  return aligned(static_cast<std::size_t>(m) * static_cast<std::size_t>(k));
}

std::size_t Fp8Gemm::scratch_bytes(std::int64_t m, std::int64_t n, std::int64_t k) {
  const auto rows = static_cast<std::size_t>(m);
  return x_scales_offset(m, k) + aligned(rows * sizeof(float)) +
         aligned(rows * static_cast<std::size_t>(n) * sizeof(float));
}

void Fp8Gemm::destroy(Plan& plan) {
  destroy_plan(plan);
  plan.vector_scales = false;
}

bool Fp8Gemm::make_plan(const Key& key, bool vector_scales, const float* w_scales,
                        const float* x_scales, Plan& plan) {
  const std::int64_t m = std::get<0>(key);
  const std::int64_t n = std::get<1>(key);
  const std::int64_t k = std::get<2>(key);
  plan = Plan{};
  plan.vector_scales = vector_scales;
  // Whatever leaves early (a refusal, a throw) leaves nothing allocated behind.
  struct Cleanup {
    Plan& plan;
    cublasLtMatmulPreference_t preference = nullptr;
    bool keep = false;
    ~Cleanup() {
      if (preference != nullptr) cublaslt().preference_destroy(preference);
      if (!keep) Fp8Gemm::destroy(plan);
    }
  } cleanup{plan};

  const bool narrow = std::get<6>(key);
  if (narrow && !vector_scales) return false;  // the fallback's epilogue writes f32
  create_plan(plan, CUDA_R_8F_E4M3, CUDA_R_8F_E4M3, m, n, k, n, narrow ? CUDA_R_16BF : CUDA_R_32F);
  // Off (the default, set to say so): Hopper's FP8 tensor cores keep only about 14 bits of
  // a running sum, and fast accumulation leaves the whole of k in them; without it the
  // kernels move the partial sums into f32 registers every few k-steps, so the error stays
  // near an f32 GEMM's instead of growing with k.
  const std::int8_t fast_accumulation = 0;
  CONVEYOR_CUBLAS(cublaslt().matmul_desc_set_attribute(
      plan.desc, CUBLASLT_MATMUL_DESC_FAST_ACCUM, &fast_accumulation, sizeof(fast_accumulation)));
#if CONVEYOR_FP8_OUTER_VECTOR_SCALES
  if (vector_scales) {
    const std::int32_t outer_vector = CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F;
    // A library that does not know the mode refuses it here: take the fallback.
    if (cublaslt().matmul_desc_set_attribute(plan.desc, CUBLASLT_MATMUL_DESC_A_SCALE_MODE,
                                             &outer_vector,
                                             sizeof(outer_vector)) != CUBLAS_STATUS_SUCCESS ||
        cublaslt().matmul_desc_set_attribute(plan.desc, CUBLASLT_MATMUL_DESC_B_SCALE_MODE,
                                             &outer_vector,
                                             sizeof(outer_vector)) != CUBLAS_STATUS_SUCCESS)
      return false;
    set_scale_pointers(plan.desc, w_scales, x_scales);
  }
#else
  (void)w_scales;
  (void)x_scales;
  if (vector_scales) return false;
#endif

  CONVEYOR_CUBLAS(cublaslt().preference_create(&cleanup.preference));
  const std::uint64_t workspace = workspace_bytes_;
  CONVEYOR_CUBLAS(cublaslt().preference_set_attribute(
      cleanup.preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace, sizeof(workspace)));
  // x's codes are in the scratch (256-byte aligned), and so are the fallback's sums.
  const std::uint32_t a_alignment = std::get<4>(key);
  const auto b_alignment = static_cast<std::uint32_t>(kAlignment);
  const std::uint32_t cd_alignment = vector_scales ? std::get<5>(key) : b_alignment;
  CONVEYOR_CUBLAS(cublaslt().preference_set_attribute(cleanup.preference,
                                                      CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES,
                                                      &a_alignment, sizeof(a_alignment)));
  CONVEYOR_CUBLAS(cublaslt().preference_set_attribute(cleanup.preference,
                                                      CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                                                      &b_alignment, sizeof(b_alignment)));
  CONVEYOR_CUBLAS(cublaslt().preference_set_attribute(cleanup.preference,
                                                      CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES,
                                                      &cd_alignment, sizeof(cd_alignment)));
  CONVEYOR_CUBLAS(cublaslt().preference_set_attribute(cleanup.preference,
                                                      CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES,
                                                      &cd_alignment, sizeof(cd_alignment)));
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  const cublasStatus_t status = cublaslt().algo_get_heuristic(
      handle_, plan.desc, plan.a, plan.b, plan.c, plan.c, cleanup.preference, 1, &result, &found);
  if (status != CUBLAS_STATUS_SUCCESS || found == 0) {
    if (vector_scales) return false;
    fail(ErrorCode::kUnsupported,
         "cublasLt: no algorithm for a " + shape_text(m, n, k) + " FP8 GEMM" +
             (status != CUBLAS_STATUS_SUCCESS
                  ? std::string(" (") + cublaslt().status_name(status) + ")"
                  : std::string()));
  }
  plan.algo = result.algo;
  cleanup.keep = true;
  return true;
}

Fp8Gemm::Plan& Fp8Gemm::plan_for(const Key& key, const float* w_scales, const float* x_scales) {
  if (const auto it = plans_.find(key); it != plans_.end()) return it->second;
  Plan plan;
  if (!try_vector_scales_ || !make_plan(key, true, w_scales, x_scales, plan)) {
    if (std::get<6>(key)) {
      plan = Plan{};  // a bf16 output needs the vector scales: remembered as refused
      plan.usable = false;
    } else {
      make_plan(key, false, nullptr, nullptr, plan);  // the fallback is made or throws
    }
  }
  return plans_.emplace(key, plan).first->second;
}

void Fp8Gemm::check(std::int64_t m, std::int64_t n, std::int64_t k, const void* scratch) {
  if (m < 0 || n <= 0 || k <= 0 || k % 16 != 0 || n % 4 != 0) {
    fail(ErrorCode::kInvalidArgument,
         "fp8 gemm: " + shape_text(m, n, k) +
             " needs k a positive multiple of 16 and n a positive multiple of 4");
  }
  if (reinterpret_cast<std::uintptr_t>(scratch) % kAlignment != 0)
    fail(ErrorCode::kInvalidArgument, "fp8 gemm: the scratch is not 256-byte aligned");
}

bool Fp8Gemm::run_narrow(const float* x, std::int64_t m, const std::uint8_t* w_codes,
                         const float* w_scales, std::int64_t n, std::int64_t k, __nv_bfloat16* y,
                         void* scratch, bool x_quantized) {
  check(m, n, k, scratch);
  if (m == 0) return true;
  auto* const base = static_cast<std::uint8_t*>(scratch);
  std::uint8_t* const x_codes = base;
  float* const x_scales = reinterpret_cast<float*>(base + x_scales_offset(m, k));
  Plan& plan =
      plan_for({m, n, k, false, alignment_of(w_codes), alignment_of(y), true}, w_scales, x_scales);
  if (!plan.usable) return false;  // before quantising x, which the caller's run() will do
  if (!x_quantized) quantize_rows_e4m3(x, m, k, x_codes, x_scales, stream_);
  set_scale_pointers(plan.desc, w_scales, x_scales);
  const float alpha = 1.0f;
  const float beta = 0.0f;
  const cublasStatus_t status =
      cublaslt().matmul(handle_, plan.desc, &alpha, w_codes, plan.a, x_codes, plan.b, &beta, y,
                        plan.c, y, plan.c, &plan.algo, workspace_, workspace_bytes_, stream_);
  if (status == CUBLAS_STATUS_SUCCESS) return true;
  if (status != CUBLAS_STATUS_NOT_SUPPORTED && status != CUBLAS_STATUS_INVALID_VALUE)
    CONVEYOR_CUBLAS(status);
  // Refused when it ran, though the heuristic offered it: refused from now on.
  destroy(plan);
  plan.usable = false;
  return false;
}

void Fp8Gemm::run(const float* x, std::int64_t m, const std::uint8_t* w_codes,
                  const float* w_scales, std::int64_t n, std::int64_t k, const float* bias,
                  float* y, bool accumulate, void* scratch, bool x_quantized) {
  check(m, n, k, scratch);
  if (m == 0) return;
  auto* const base = static_cast<std::uint8_t*>(scratch);
  std::uint8_t* const x_codes = base;
  const std::size_t scales_offset = x_scales_offset(m, k);
  float* const x_scales = reinterpret_cast<float*>(base + scales_offset);
  float* const sums = reinterpret_cast<float*>(
      base + scales_offset + aligned(static_cast<std::size_t>(m) * sizeof(float)));

  if (!x_quantized) quantize_rows_e4m3(x, m, k, x_codes, x_scales, stream_);

  const Key key{m, n, k, accumulate, alignment_of(w_codes), alignment_of(y), false};
  Plan& plan = plan_for(key, w_scales, x_scales);
  const float alpha = 1.0f;
  if (plan.vector_scales) {
    // The plan keeps the pointers of the call that made it; this call's may differ.
    set_scale_pointers(plan.desc, w_scales, x_scales);
    const float beta = accumulate ? 1.0f : 0.0f;
    const cublasStatus_t status =
        cublaslt().matmul(handle_, plan.desc, &alpha, w_codes, plan.a, x_codes, plan.b, &beta, y,
                          plan.c, y, plan.c, &plan.algo, workspace_, workspace_bytes_, stream_);
    if (status == CUBLAS_STATUS_SUCCESS) {
      // After the accumulation, where the CPU twin adds the bias before it: the two
      // roundings differ by at most an ulp of y.
      if (bias != nullptr) add_bias(y, bias, m, n, stream_);
      last_vector_scales_ = true;
      return;
    }
    if (status != CUBLAS_STATUS_NOT_SUPPORTED && status != CUBLAS_STATUS_INVALID_VALUE)
      CONVEYOR_CUBLAS(status);
    // Refused when it ran, though the heuristic offered it: this shape takes the fallback
    // from now on.
    Plan fallback;
    make_plan(key, false, nullptr, nullptr, fallback);
    destroy(plan);
    plan = fallback;
  }
  const float beta = 0.0f;  // the epilogue accumulates
  CONVEYOR_CUBLAS(cublaslt().matmul(handle_, plan.desc, &alpha, w_codes, plan.a, x_codes, plan.b,
                                    &beta, sums, plan.c, sums, plan.c, &plan.algo, workspace_,
                                    workspace_bytes_, stream_));
  fp8_scale_epilogue(sums, x_scales, w_scales, bias, m, n, accumulate, y, stream_);
  last_vector_scales_ = false;
}

}  // namespace conveyor::cuda
