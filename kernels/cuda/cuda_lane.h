// CudaLane: one queue of the CUDA backend's ops (Backend::use_lane) with everything its
// ops write besides their outputs: its stream, page-locked staging, GEMM workspace and
// plans, scratch slots and the reused conversions of products' inputs. Two lanes' ops
// may run at once, so nothing here is shared between lanes.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "kernels/cuda/device_pool.h"
#include "kernels/cuda/fp8_gemm.h"
#include "kernels/cuda/input_copy.h"
#include "kernels/cuda/lt_gemm.h"
#include "kernels/cuda/pinned_staging.h"
#include "kernels/cuda/pool_block.h"

namespace conveyor::cuda {

// A stream destroyed with its owner, or when a constructor fails after creating it.
struct OwnedStream {
  cudaStream_t handle = nullptr;
  OwnedStream() = default;
  OwnedStream(const OwnedStream&) = delete;
  OwnedStream& operator=(const OwnedStream&) = delete;
  ~OwnedStream() {
    if (handle != nullptr) cudaStreamDestroy(handle);
  }
  operator cudaStream_t() const { return handle; }  // where a stream is expected
};

struct CudaLane {
  // A new stream and its parts, GEMM workspace from `pool`. Throws Error.
  CudaLane(int index, const std::shared_ptr<DevicePool>& pool);
  CudaLane(const CudaLane&) = delete;
  CudaLane& operator=(const CudaLane&) = delete;

  int index = 0;
  // Declared first, so destroyed last: the parts below wait for it or queue on it.
  OwnedStream stream;
  std::unique_ptr<PinnedStaging> staging;
  std::unique_ptr<PoolBlock> gemm_workspace;
  std::unique_ptr<LtGemm> gemm;
  std::unique_ptr<Fp8Gemm> fp8_gemm;
  std::vector<std::unique_ptr<PoolBlock>> scratch;
  // Bit i: scratch slot i was used by a recorded step, whose graph holds its address.
  std::uint32_t recorded_scratch = 0;
  // The dense products' 16-bit input (scratch slot 0; its form the cudaDataType) and the
  // FP8 products' E4M3 codes and scales (slot 5).
  InputCopy converted;
  InputCopy quantized;
};

}  // namespace conveyor::cuda
