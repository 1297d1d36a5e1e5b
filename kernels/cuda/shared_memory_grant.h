// The dynamic shared memory a kernel may use above 48 KiB: a kernel must ask for it first,
// once on each device. A driver call kept off the decode steps' launches. Host code of .cu
// files only.
#pragma once

#include <cuda_runtime.h>

#include <array>
#include <atomic>
#include <cstddef>

#include "kernels/cuda/cuda_check.h"

namespace conveyor::cuda {

// Grants `kKernel` `bytes` of dynamic shared memory on the current device, the first time
// only. Two threads may both set it the first time, which is harmless.
template <auto kKernel>
void grant_shared_memory(int bytes) {
  constexpr int kMaxDevices = 64;  // devices whose grant is remembered
  static std::array<std::atomic<bool>, kMaxDevices> granted{};
  int device = 0;
  CONVEYOR_CUDA(cudaGetDevice(&device));
  if (device < kMaxDevices && granted[static_cast<std::size_t>(device)].load()) return;
  CONVEYOR_CUDA(cudaFuncSetAttribute(kKernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
  if (device < kMaxDevices) granted[static_cast<std::size_t>(device)].store(true);
}

}  // namespace conveyor::cuda
