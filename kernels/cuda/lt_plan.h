// The cuBLASLt descriptors of one product y = x W^T as the backend lays it out
// (row-major y[m, n] = x[m, k] W[n, k]^T, which in cuBLAS's column-major terms is
// y^T = op(W) x^T with W read transposed: A = W (k x n, ld k), B = x (k x m, ld k),
// C = D = y (n x m, f32 or the inputs' 16-bit type, ld ldy)), and the algorithm chosen for them.
// LtGemm and Fp8Gemm each keep a cache of these.
#pragma once

#include <cublasLt.h>

#include <cstdint>

namespace conveyor::cuda {

struct LtPlan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr;
  cublasLtMatrixLayout_t b = nullptr;
  cublasLtMatrixLayout_t c = nullptr;
  cublasLtMatmulAlgo_t algo{};
};

// Creates the descriptor (f32 compute and scale, A transposed) and the layouts, W of
// `w_type`, x of `x_type` and y of `y_type`. Throws on a cuBLASLt error, leaving whatever
// it made in `plan` for destroy_plan().
void create_plan(LtPlan& plan, cudaDataType w_type, cudaDataType x_type, std::int64_t m,
                 std::int64_t n, std::int64_t k, std::int64_t ldy,
                 cudaDataType y_type = CUDA_R_32F);

// Destroys what `plan` holds (members still null are skipped) and empties it.
void destroy_plan(LtPlan& plan);

}  // namespace conveyor::cuda
