// Device memory from the backend's pool (DevicePool) held by one object, returned when
// the holder lets go, and what the backend counts of it; the CUDA backend's buffers.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>

#include "kernels/backend.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_pool.h"

namespace conveyor::cuda {

struct Usage {
  std::atomic<std::uint64_t> weight_bytes{0};
  std::atomic<std::uint64_t> buffer_bytes{0};
};

// Memory from the pool, returned when the holder lets go. Buffers and weights keep
// the pool alive, as they may outlive the backend.
class PoolBlock {
 public:
  PoolBlock(std::shared_ptr<DevicePool> pool, std::size_t bytes, const char* what)
      : pool_(std::move(pool)), data_(pool_->allocate(bytes, what)), bytes_(bytes) {}
  ~PoolBlock() { pool_->release(data_); }
  PoolBlock(const PoolBlock&) = delete;
  PoolBlock& operator=(const PoolBlock&) = delete;
  void* data() const { return data_; }
  std::size_t bytes() const { return bytes_; }

 private:
  std::shared_ptr<DevicePool> pool_;
  void* data_;
  std::size_t bytes_;
};

class CudaBuffer final : public BackendBuffer {
 public:
  CudaBuffer(std::shared_ptr<DevicePool> pool, std::size_t bytes, std::shared_ptr<Usage> usage,
             cudaStream_t stream)
      : block_(std::move(pool), std::max<std::size_t>(bytes, 1), "a buffer"),
        usage_(std::move(usage)) {
    usage_->buffer_bytes += block_.bytes();
    // Zero-filled, as the Backend contract says; ordered before any op on the stream.
    CONVEYOR_CUDA(cudaMemsetAsync(block_.data(), 0, block_.bytes(), stream));
  }
  ~CudaBuffer() override { usage_->buffer_bytes -= block_.bytes(); }
  void* data() override { return block_.data(); }
  std::size_t bytes() const override { return block_.bytes(); }

 private:
  PoolBlock block_;
  std::shared_ptr<Usage> usage_;
};

}  // namespace conveyor::cuda
