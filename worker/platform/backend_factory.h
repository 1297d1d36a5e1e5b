// Which backend a worker runs on, chosen at run time: the CUDA backend where this
// build has it and a device is present, the CPU backend otherwise (or when asked).
#pragma once

#include <memory>
#include <string>

#include "kernels/backend.h"
#include "kernels/cuda/cuda_backend.h"  // CudaMatrixType (no CUDA headers)

namespace conveyor {

enum class BackendKind { kAuto, kCpu, kCuda };

struct BackendRequest {
  BackendKind kind = BackendKind::kAuto;
  int device = 0;                    // CUDA device index
  int threads = 0;                   // CPU backend threads; 0 = every core
  double gpu_memory_fraction = 0.9;  // CUDA: share of the device's memory for the pool
  CudaMatrixType cuda_matrices = CudaMatrixType::kAuto;  // CUDA: the matrices' type
};

// True when this build has the CUDA backend, at least one device answers and
// cuBLASLt loads.
bool cuda_available();

// kAuto resolves to kCuda when cuda_available(), else kCpu.
BackendKind resolve(BackendKind kind);

// Throws Error(kUnsupported) for CUDA in a build without it, Error(kUnavailable)
// without a device, and what the backend's constructor throws.
std::unique_ptr<Backend> make_backend(const BackendRequest& request);

// "cpu", "cuda", "cuda:N" (device N); Error(kInvalidArgument) for anything else.
BackendRequest parse_device(const std::string& text);

}  // namespace conveyor
