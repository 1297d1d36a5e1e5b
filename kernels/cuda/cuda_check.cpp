#include "kernels/cuda/cuda_check.h"

#include <cstring>

#include "kernels/cuda/cublaslt_api.h"

namespace conveyor::cuda {
namespace {

std::string where(const char* call, const char* file, int line) {
  const char* base = std::strrchr(file, '/');
  return std::string(call) + " (" + (base != nullptr ? base + 1 : file) + ":" +
         std::to_string(line) + ")";
}

}  // namespace

void fail_cuda(cudaError_t error, const char* call, const char* file, int line) {
  const ErrorCode code =
      error == cudaErrorMemoryAllocation ? ErrorCode::kResourceExhausted : ErrorCode::kUnavailable;
  fail(code, std::string("cuda: ") + cudaGetErrorName(error) + " (" + cudaGetErrorString(error) +
                 ") in " + where(call, file, line));
}

void fail_cublas(cublasStatus_t status, const char* call, const char* file, int line) {
  ErrorCode code = ErrorCode::kUnavailable;
  if (status == CUBLAS_STATUS_ALLOC_FAILED) code = ErrorCode::kResourceExhausted;
  if (status == CUBLAS_STATUS_NOT_SUPPORTED || status == CUBLAS_STATUS_INVALID_VALUE)
    code = ErrorCode::kUnsupported;
  fail(code, std::string("cublasLt: ") + cublaslt().status_name(status) + " (" +
                 cublaslt().status_string(status) + ") in " + where(call, file, line));
}

bool event_done(cudaEvent_t event) {
  const cudaError_t state = cudaEventQuery(event);
  if (state == cudaErrorNotReady) {
    // Clear it only if the runtime kept it as the last error: an unrelated error
    // waiting there is the next check's to report.
    if (cudaPeekAtLastError() == cudaErrorNotReady) cudaGetLastError();
    return false;
  }
  if (state != cudaSuccess) fail_cuda(state, "cudaEventQuery", __FILE__, __LINE__);
  return true;
}

}  // namespace conveyor::cuda
