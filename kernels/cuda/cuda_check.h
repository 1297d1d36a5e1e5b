// Every CUDA runtime and cuBLASLt call goes through these: a failure becomes a typed
// conveyor::Error naming the call, never a value nobody reads. Out of memory is
// kResourceExhausted (the caller may plan smaller); anything else is kUnavailable:
// after a device fault the context is unusable, so the worker must stop and the
// coordinator requeue its requests.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <string>

#include "common/status.h"

namespace conveyor::cuda {

[[noreturn]] void fail_cuda(cudaError_t error, const char* call, const char* file, int line);
[[noreturn]] void fail_cublas(cublasStatus_t status, const char* call, const char* file, int line);

// Whether the work before `event` has finished: false while it runs, Error for a fault.
// "Not ready" is not an error, and none is left behind for the next check.
bool event_done(cudaEvent_t event);

}  // namespace conveyor::cuda

#define CONVEYOR_CUDA(call)                                                         \
  do {                                                                              \
    const cudaError_t conveyor_cuda_error_ = (call);                                \
    if (conveyor_cuda_error_ != cudaSuccess)                                        \
      ::conveyor::cuda::fail_cuda(conveyor_cuda_error_, #call, __FILE__, __LINE__); \
  } while (0)

#define CONVEYOR_CUBLAS(call)                                                            \
  do {                                                                                   \
    const cublasStatus_t conveyor_cublas_status_ = (call);                               \
    if (conveyor_cublas_status_ != CUBLAS_STATUS_SUCCESS)                                \
      ::conveyor::cuda::fail_cublas(conveyor_cublas_status_, #call, __FILE__, __LINE__); \
  } while (0)

// After a kernel launch: a bad configuration shows up here, a fault in the kernel at
// the next synchronising call.
#define CONVEYOR_CUDA_LAUNCHED() CONVEYOR_CUDA(cudaGetLastError())
