// The CUDA backend: the Backend ops on one GPU, for Hopper (sm_90) first.
//
// - Memory: one pool reserved at start (DevicePool) holds weights, K/V blocks,
//   activations and scratch; nothing calls cudaMalloc while steps run.
// - Weights: 1-D tensors as f32; matrices as bf16 (GGUF block-quantised ones are
//   dequantised at load), or f32 where the source is f32 (the fp32 mode, in which
//   every product is plain f32 arithmetic) unless `matrices` says otherwise.
// - Ops queue on one stream and return; copy_to_host() and synchronize() wait. The
//   model's activations stay f32; a bf16 GEMM rounds its input rows to bf16 and
//   accumulates in f32 (cuBLASLt, algorithm cached per shape).
// - Errors: every CUDA and cuBLASLt call is checked (kernels/cuda/cuda_check.h).
//
// This header needs no CUDA headers: callers get a Backend.
#pragma once

#include <memory>

#include "kernels/backend.h"

namespace conveyor {

enum class CudaMatrixType { kAuto, kBf16, kF32 };

struct CudaBackendOptions {
  int device = 0;
  // Share of the device's memory the pool reserves (never more than is free).
  double memory_fraction = 0.9;
  CudaMatrixType matrices = CudaMatrixType::kAuto;  // kAuto: f32 sources f32, others bf16
};

// Throws Error(kUnavailable) without such a device, Error(kResourceExhausted) when the
// pool cannot be reserved.
std::unique_ptr<Backend> make_cuda_backend(const CudaBackendOptions& options = {});

}  // namespace conveyor
