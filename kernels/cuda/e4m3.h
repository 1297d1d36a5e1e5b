// FP8 E4M3 codes on the device, for the kernels that quantise to them (the FP8 GEMM's
// activations, the FP8 K/V cache) and read them back. Encoding matches common/fp8.h's
// fp32_to_fp8_e4m3(v / s) bit for bit, as the CPU twins compute it. For .cu files only.
#pragma once

#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <cstdint>

namespace conveyor::cuda {

constexpr float kE4M3Max = 448.0f;  // common/fp8.h's kFp8E4M3Max
constexpr unsigned kE4M3NaN = 0x7Fu;

// One code for v / s. The hardware conversion rounds to nearest even and, with
// __NV_SATFINITE, saturates finite values and infinities at +-448. A NaN input is coded
// here rather than divided: a NaN made by the device's arithmetic loses its sign, while
// the host's division keeps the input's.
__device__ __forceinline__ std::uint8_t encode_e4m3(float v, float s) {
  if (isnan(v)) return static_cast<std::uint8_t>((signbit(v) ? 0x80u : 0u) | kE4M3NaN);
  return static_cast<std::uint8_t>(
      __nv_cvt_float_to_fp8(__fdiv_rn(v, s), __NV_SATFINITE, __NV_E4M3));
}

// The value of a code, exactly (every E4M3 value is an f16 value).
__device__ __forceinline__ float decode_e4m3(std::uint8_t code) {
  return __half2float(__half(__nv_cvt_fp8_to_halfraw(code, __NV_E4M3)));
}

// The scale of a row whose largest magnitude is `amax`: amax / 448, or 1 for a row of
// zeros, divided as the host divides (not a reciprocal product).
__device__ __forceinline__ float e4m3_scale(float amax) {
  const float s = __fdiv_rn(amax, kE4M3Max);
  return s == 0.0f ? 1.0f : s;
}

}  // namespace conveyor::cuda
