// LtGemm: y = x W^T through cuBLASLt, row-major as the Backend sees it, with the
// algorithm chosen by cuBLASLt's heuristic once per (shape, types, accumulate) and
// cached; the plans' descriptors live as long as this object.
//
// Row-major y[m, n] = x[m, k] W[n, k]^T is, in cuBLAS's column-major terms,
// y^T[n, m] = op(W)[n, k] x^T[k, m] with W read transposed: so A = W (k x n, ld k,
// transposed), B = x (k x m, ld k), C = D = y (n x m, ld n).
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <map>
#include <tuple>

#include "kernels/cuda/lt_plan.h"

namespace conveyor::cuda {

class LtGemm {
 public:
  // `workspace` (device memory of `workspace_bytes`) is shared by every call.
  LtGemm(cudaStream_t stream, void* workspace, std::size_t workspace_bytes);
  ~LtGemm();
  LtGemm(const LtGemm&) = delete;
  LtGemm& operator=(const LtGemm&) = delete;

  // y (f32) = x W^T, or y += x W^T with `accumulate`. x and W share `type`
  // (CUDA_R_32F: full f32 arithmetic, no TF32; CUDA_R_16BF: f32 accumulation). Rows of
  // y are `ldy` floats apart (0: n), so that a slab of W's rows can fill a slab of
  // y's columns.
  void run(const void* x, const void* w, cudaDataType type, float* y, std::int64_t m,
           std::int64_t n, std::int64_t k, bool accumulate, std::int64_t ldy = 0);

  // y = x W^T with y in the inputs' 16-bit `type` (CUDA_R_16BF or CUDA_R_16F), rounded
  // once from the f32 accumulation: for an intermediate the next op reads as 16 bits.
  void run_narrow(const void* x, const void* w, cudaDataType type, void* y, std::int64_t m,
                  std::int64_t n, std::int64_t k);

  std::size_t cached_plans() const { return plans_.size(); }

 private:
  using Plan = LtPlan;
  // m, n, k, input type, accumulate, ldy, output type.
  using Key = std::tuple<std::int64_t, std::int64_t, std::int64_t, int, bool, std::int64_t, int>;

  const Plan& plan_for(const Key& key);

  cudaStream_t stream_;
  void* workspace_;
  std::size_t workspace_bytes_;
  cublasLtHandle_t handle_ = nullptr;
  std::map<Key, Plan> plans_;
};

}  // namespace conveyor::cuda
