// The CUDA backend: the Backend ops on one GPU, for Hopper (sm_90) first.
//
// - Memory: one pool reserved at start (DevicePool) holds weights, K/V blocks,
//   activations and scratch; nothing calls cudaMalloc while steps run.
// - Weights: 1-D tensors as f32; matrices in the type closest to their source unless
//   `matrices` says otherwise: f32 stays f32 (the fp32 mode, in which every product
//   is plain f32 arithmetic), bf16 stays bf16, f16 and GGUF block-quantised matrices
//   (dequantised at load; their scales are f16) become f16, whose 11-bit mantissa
//   keeps them closer than bf16's 8 bits. Conveyor's compressed q8_r, q4_g128 and
//   f8_r matrices stay compressed and run through GEMMs that read them as stored
//   (quant_gemm.h: W8A16, W4A16; fp8_gemm.h: W8A8 on the FP8 tensor cores).
// - Ops queue on a stream and return; copy_to_host() and synchronize() wait, fence()
//   does not (results land through page-locked staging). Two lanes
//   (CONVEYOR_CUDA_LANES=2) give two streams that may run at once. The
//   model's activations stay f32; a 16-bit GEMM rounds its input rows to the
//   weight's type (f16 saturating at its range) and accumulates in f32 (cuBLASLt,
//   algorithm cached per shape).
// - Errors: every CUDA and cuBLASLt call is checked (kernels/cuda/cuda_check.h).
//
// This header needs no CUDA headers: callers get a Backend.
#pragma once

#include <memory>

#include "kernels/backend.h"

namespace conveyor {

enum class CudaMatrixType { kAuto, kBf16, kF16, kF32 };

struct CudaBackendOptions {
  int device = 0;
  // Share of the device's memory the pool reserves (never more than is free).
  double memory_fraction = 0.9;
  CudaMatrixType matrices = CudaMatrixType::kAuto;  // kAuto: as the source (see above)
};

// Throws Error(kUnavailable) without such a device, Error(kResourceExhausted) when the
// pool cannot be reserved.
std::unique_ptr<Backend> make_cuda_backend(const CudaBackendOptions& options = {});

}  // namespace conveyor
