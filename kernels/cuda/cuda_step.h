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
  // the host does not wait for. `fixed`, for a recorded step (layout.recorded_rows > 0):
  // the backend's block for steps of its size, grown here when too small, which puts
  // every array at an address that depends on the size alone.
  CudaStep(StepLayout layout, std::shared_ptr<DevicePool> pool, PinnedStaging& staging,
           std::unique_ptr<PoolBlock>* fixed = nullptr);
  const DeviceStep& device() const { return view_; }
  // The fixed block was (re)allocated for this step: recordings of its size are stale.
  bool moved() const { return moved_; }

 private:
  std::unique_ptr<PoolBlock> storage_;  // null with a fixed block
  DeviceStep view_;
  bool moved_ = false;
};

// The backend's view of a step it prepared.
inline const CudaStep& cuda_step(const BackendStep& step) {
  return static_cast<const CudaStep&>(step);
}

}  // namespace conveyor::cuda
