// A step's metadata on the CUDA backend: the layout's arrays in device memory, which every
// op of the step reads (DeviceStep).
#pragma once

#include <cuda_runtime.h>

#include <memory>

#include "kernels/backend.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/pinned_staging.h"
#include "kernels/cuda/pool_block.h"

namespace conveyor::cuda {

// A step's metadata, copied to the device once (one transfer) for all its ops.
class CudaStep final : public BackendStep {
 public:
  // Copies the layout's arrays to the device through `staging`, in one transfer that
  // the host does not wait for.
  CudaStep(StepLayout layout, std::shared_ptr<DevicePool> pool, PinnedStaging& staging);
  const DeviceStep& device() const { return view_; }

 private:
  std::unique_ptr<PoolBlock> storage_;
  DeviceStep view_;
};

// The backend's view of a step it prepared.
inline const CudaStep& cuda_step(const BackendStep& step) {
  return static_cast<const CudaStep&>(step);
}

}  // namespace conveyor::cuda
