#include "kernels/cuda/lt_gemm.h"

#include <string>

#include "kernels/cuda/cublaslt_api.h"
#include "kernels/cuda/cuda_check.h"

namespace conveyor::cuda {

LtGemm::LtGemm(cudaStream_t stream, void* workspace, std::size_t workspace_bytes)
    : stream_(stream), workspace_(workspace), workspace_bytes_(workspace_bytes) {
  CONVEYOR_CUBLAS(cublaslt().create(&handle_));
}

LtGemm::~LtGemm() {
  for (auto& [key, plan] : plans_)
    destroy_plan(plan);
  cublaslt().destroy(handle_);
}

const LtGemm::Plan& LtGemm::plan_for(const Key& key) {
  if (const auto it = plans_.find(key); it != plans_.end()) return it->second;
  const auto [m, n, k, type_int, accumulate, ldy, y_type_int] = key;
  const auto type = static_cast<cudaDataType>(type_int);
  Plan plan;
  try {
    create_plan(plan, type, type, m, n, k, ldy, static_cast<cudaDataType>(y_type_int));
  } catch (...) {
    destroy_plan(plan);
    throw;
  }
  cublasLtMatmulPreference_t preference = nullptr;
  CONVEYOR_CUBLAS(cublaslt().preference_create(&preference));
  const std::uint64_t workspace = workspace_bytes_;
  CONVEYOR_CUBLAS(cublaslt().preference_set_attribute(
      preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace, sizeof(workspace)));
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  const cublasStatus_t status = cublaslt().algo_get_heuristic(
      handle_, plan.desc, plan.a, plan.b, plan.c, plan.c, preference, 1, &result, &found);
  cublaslt().preference_destroy(preference);
  if (status != CUBLAS_STATUS_SUCCESS || found == 0) {
    destroy_plan(plan);
    fail(ErrorCode::kUnsupported, "cublasLt: no algorithm for a " + std::to_string(m) + "x" +
                                      std::to_string(n) + "x" + std::to_string(k) + " GEMM" +
                                      (accumulate ? " (accumulating)" : ""));
  }
  plan.algo = result.algo;
  return plans_.emplace(key, plan).first->second;
}

void LtGemm::run(const void* x, const void* w, cudaDataType type, float* y, std::int64_t m,
                 std::int64_t n, std::int64_t k, bool accumulate, std::int64_t ldy) {
  if (m == 0) return;
  const Plan& plan = plan_for({m, n, k, static_cast<int>(type), accumulate, ldy > 0 ? ldy : n,
                               static_cast<int>(CUDA_R_32F)});
  const float alpha = 1.0f;
  const float beta = accumulate ? 1.0f : 0.0f;
  CONVEYOR_CUBLAS(cublaslt().matmul(handle_, plan.desc, &alpha, w, plan.a, x, plan.b, &beta, y,
                                    plan.c, y, plan.c, &plan.algo, workspace_, workspace_bytes_,
                                    stream_));
}

void LtGemm::run_narrow(const void* x, const void* w, cudaDataType type, void* y, std::int64_t m,
                        std::int64_t n, std::int64_t k) {
  if (m == 0) return;
  const Plan& plan = plan_for({m, n, k, static_cast<int>(type), false, n, static_cast<int>(type)});
  const float alpha = 1.0f;
  const float beta = 0.0f;
  CONVEYOR_CUBLAS(cublaslt().matmul(handle_, plan.desc, &alpha, w, plan.a, x, plan.b, &beta, y,
                                    plan.c, y, plan.c, &plan.algo, workspace_, workspace_bytes_,
                                    stream_));
}

}  // namespace conveyor::cuda
