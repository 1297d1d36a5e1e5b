#include "kernels/cuda/lt_plan.h"

#include "kernels/cuda/cublaslt_api.h"
#include "kernels/cuda/cuda_check.h"

namespace conveyor::cuda {

void create_plan(LtPlan& plan, cudaDataType w_type, cudaDataType x_type, std::int64_t m,
                 std::int64_t n, std::int64_t k, std::int64_t ldy, cudaDataType y_type) {
  CONVEYOR_CUBLAS(cublaslt().matmul_desc_create(&plan.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t transpose = CUBLAS_OP_T;
  const cublasOperation_t none = CUBLAS_OP_N;
  CONVEYOR_CUBLAS(cublaslt().matmul_desc_set_attribute(plan.desc, CUBLASLT_MATMUL_DESC_TRANSA,
                                                       &transpose, sizeof(transpose)));
  CONVEYOR_CUBLAS(cublaslt().matmul_desc_set_attribute(plan.desc, CUBLASLT_MATMUL_DESC_TRANSB,
                                                       &none, sizeof(none)));
  CONVEYOR_CUBLAS(cublaslt().matrix_layout_create(&plan.a, w_type, static_cast<std::uint64_t>(k),
                                                  static_cast<std::uint64_t>(n), k));
  CONVEYOR_CUBLAS(cublaslt().matrix_layout_create(&plan.b, x_type, static_cast<std::uint64_t>(k),
                                                  static_cast<std::uint64_t>(m), k));
  CONVEYOR_CUBLAS(cublaslt().matrix_layout_create(&plan.c, y_type, static_cast<std::uint64_t>(n),
                                                  static_cast<std::uint64_t>(m), ldy));
}

void destroy_plan(LtPlan& plan) {
  if (plan.a != nullptr) cublaslt().matrix_layout_destroy(plan.a);
  if (plan.b != nullptr) cublaslt().matrix_layout_destroy(plan.b);
  if (plan.c != nullptr) cublaslt().matrix_layout_destroy(plan.c);
  if (plan.desc != nullptr) cublaslt().matmul_desc_destroy(plan.desc);
  plan = LtPlan{};
}

}  // namespace conveyor::cuda
