#include "kernels/cuda/cuda_lane.h"

#include "kernels/cuda/cuda_check.h"

namespace conveyor::cuda {

namespace {

// cuBLASLt's recommended workspace on Hopper.
constexpr std::size_t kGemmWorkspaceBytes = 32u << 20;

}  // namespace

CudaLane::CudaLane(int lane_index, const std::shared_ptr<DevicePool>& pool) : index(lane_index) {
  CONVEYOR_CUDA(cudaStreamCreateWithFlags(&stream.handle, cudaStreamNonBlocking));
  staging = std::make_unique<PinnedStaging>(stream);
  gemm_workspace = std::make_unique<PoolBlock>(pool, kGemmWorkspaceBytes, "GEMM workspace");
  gemm = std::make_unique<LtGemm>(stream, gemm_workspace->data(), kGemmWorkspaceBytes);
  fp8_gemm = std::make_unique<Fp8Gemm>(stream, gemm_workspace->data(), kGemmWorkspaceBytes);
}

}  // namespace conveyor::cuda
