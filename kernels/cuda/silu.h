// SiLU-gated product, as the CPU twin computes it (cpu::swiglu_f32): the one definition the
// CUDA kernels share. Device code only (include from .cu).
#pragma once

#include <cuda_runtime.h>

namespace conveyor::cuda {

// silu(g) * u = g / (1 + e^-g) * u, in f32.
__device__ __forceinline__ float silu_times(float g, float u) {
  return g / (1.0f + expf(-g)) * u;
}

}  // namespace conveyor::cuda
