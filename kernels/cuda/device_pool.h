// DevicePool: the CUDA backend's memory, reserved with one cudaMalloc when the backend
// starts (a share of the device's memory) and handed out by an ArenaAllocator. Weights,
// K/V blocks, activations and scratch all come from it, so a step never calls the
// driver's allocator and running out is a clear error at load time, not a stall later.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>

#include "common/arena_allocator.h"

namespace conveyor::cuda {

class DevicePool {
 public:
  // Reserves `bytes` on the current device. Throws Error(kResourceExhausted).
  explicit DevicePool(std::uint64_t bytes);
  ~DevicePool();
  DevicePool(const DevicePool&) = delete;
  DevicePool& operator=(const DevicePool&) = delete;

  // Throws Error(kResourceExhausted) naming the request and what is free.
  void* allocate(std::uint64_t bytes, const char* what);
  void release(void* p);

  std::uint64_t capacity() const;
  std::uint64_t used() const;
  std::uint64_t available() const;

 private:
  mutable std::mutex mutex_;  // weights may be freed from another thread (layer streaming)
  void* base_ = nullptr;
  ArenaAllocator arena_;
};

}  // namespace conveyor::cuda
