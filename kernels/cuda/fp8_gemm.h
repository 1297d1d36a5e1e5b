// Fp8Gemm: the W8A8 GEMM of Hopper's FP8 tensor cores through cuBLASLt, for weights in
// the kF8_R format (E4M3 codes [n, k] with one f32 scale per row). The CUDA twin of
// cpu::gemm_fp8 (kernels/cpu/cpu_fp8_gemm.h): each row of x is quantised to E4M3 with its
// own dynamic scale (fp8_ops.h, bit for bit as quant::quantize_rows_e4m3), then
//   y[i][j] = (sum_l e4m3(xq[i][l]) * e4m3(wq[j][l])) * (sx[i] * sw[j])  (+ bias[j]),
// or y += that. Products of E4M3 values are exact; the sums differ from the CPU's only in
// the order and precision of the tensor cores' accumulation.
//
// In cuBLAS's column-major terms (as LtGemm): A = W codes (k x n, ld k, transposed), B = x
// codes (k x m, ld k), C = D = y (n x m, ld n), so cuBLAS's M is n and its N is m. The
// scales go to cuBLASLt as outer vectors (A_SCALE_MODE = B_SCALE_MODE = OUTER_VEC_32F: sw
// has M values, sx has N) where the library takes them (cuBLAS 12.9+ on sm_90); where it
// refuses a plan, that plan falls back, once and for good, to unit scales into an f32
// scratch and fp8_scale_epilogue(), which then applies the scales, the bias and the
// accumulation.
#pragma once

#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <tuple>

#include "kernels/cuda/lt_plan.h"

namespace conveyor::cuda {

class Fp8Gemm {
 public:
  // `workspace` (device memory of `workspace_bytes`) is cuBLASLt's, shared by every call.
  // Without `try_vector_scales` every plan takes the fallback (so that tests reach it).
  Fp8Gemm(cudaStream_t stream, void* workspace, std::size_t workspace_bytes,
          bool try_vector_scales = true);
  ~Fp8Gemm();
  Fp8Gemm(const Fp8Gemm&) = delete;
  Fp8Gemm& operator=(const Fp8Gemm&) = delete;

  // Device scratch run() needs for an m x n x k product: x's codes [m, k] at offset 0, x's
  // scales f32 [m] at x_scales_offset(), then the fallback's unscaled sums f32 [m, n].
  static std::size_t scratch_bytes(std::int64_t m, std::int64_t n, std::int64_t k);
  static std::size_t x_scales_offset(std::int64_t m, std::int64_t k);

  // y (f32 [m, n]) = the W8A8 product of x (f32 [m, k]) and W (E4M3 codes [n, k], row scales
  // w_scales f32 [n]) as above, or y += it with `accumulate`; bias (f32 [n]) may be null.
  // All pointers are device memory; `scratch` holds scratch_bytes(m, n, k) and is 256-byte
  // aligned. Queued on the stream; nothing synchronises.
  // Throws Error(kInvalidArgument) unless m >= 0 and n, k > 0, k is a multiple of 16 and n
  // of 4: cuBLASLt's FP8 kernels need 16-byte aligned rows of A, B (k bytes) and C/D (4n
  // bytes). Error(kUnsupported) when cuBLASLt has no algorithm even for the fallback.
  // With `x_quantized`, `scratch` already holds x's codes and scales from the previous
  // run (same x, m and k, nothing written to x since): the products of one input in a row
  // quantise it once.
  void run(const float* x, std::int64_t m, const std::uint8_t* w_codes, const float* w_scales,
           std::int64_t n, std::int64_t k, const float* bias, float* y, bool accumulate,
           void* scratch, bool x_quantized = false);

  // y (bf16 [m, n]) = the same product rounded once to bf16, without bias or accumulation,
  // for an intermediate the next op reads as bf16. Only where cuBLASLt applies the scales
  // itself: returns false, having done nothing, where it does not (the caller then takes
  // run()).
  bool run_narrow(const float* x, std::int64_t m, const std::uint8_t* w_codes,
                  const float* w_scales, std::int64_t n, std::int64_t k, __nv_bfloat16* y,
                  void* scratch, bool x_quantized = false);

  // Whether cuBLASLt applied the per-row and per-column scales itself in the latest run()
  // (false before the first).
  bool vector_scales() const { return last_vector_scales_; }
  std::size_t cached_plans() const { return plans_.size(); }

 private:
  struct Plan : LtPlan {
    bool vector_scales = false;
    bool usable = true;  // false: a bf16-output plan cuBLASLt refused (run_narrow)
  };
  // m, n, k, accumulate, the alignments (bytes, up to 256) of W's codes and of y (the
  // algorithm chosen must be one that works with them), and whether y is bf16.
  using Key = std::tuple<std::int64_t, std::int64_t, std::int64_t, bool, std::uint32_t,
                         std::uint32_t, bool>;

  // The plan for `key`, made on first use: with vector scales (whose pointers it is made
  // with) unless cuBLASLt offers no algorithm for them, else the fallback.
  Plan& plan_for(const Key& key, const float* w_scales, const float* x_scales);
  // Fills `plan` and returns true, or returns false (nothing left to destroy) when
  // cuBLASLt has no algorithm for it.
  bool make_plan(const Key& key, bool vector_scales, const float* w_scales, const float* x_scales,
                 Plan& plan);
  static void destroy(Plan& plan);
  // Error(kInvalidArgument) for a shape or scratch run() and run_narrow() cannot take.
  static void check(std::int64_t m, std::int64_t n, std::int64_t k, const void* scratch);

  cudaStream_t stream_;
  void* workspace_;
  std::size_t workspace_bytes_;
  bool try_vector_scales_;
  bool last_vector_scales_ = false;
  cublasLtHandle_t handle_ = nullptr;
  std::map<Key, Plan> plans_;
};

}  // namespace conveyor::cuda
