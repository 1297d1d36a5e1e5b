#include "kernels/cuda/device_pool.h"

#include <string>

#include "kernels/cuda/cuda_check.h"

namespace conveyor::cuda {
namespace {

// Wide enough for 16-byte vector loads and cuBLASLt's preferred alignment.
constexpr std::uint64_t kAlignment = 256;

std::string mib(std::uint64_t bytes) {
  return std::to_string(bytes >> 20) + " MiB";
}

}  // namespace

DevicePool::DevicePool(std::uint64_t bytes) : arena_(bytes, kAlignment) {
  const cudaError_t error = cudaMalloc(&base_, arena_.capacity());
  if (error != cudaSuccess) {
    cudaGetLastError();
    fail(ErrorCode::kResourceExhausted, "cuda: cannot reserve a pool of " + mib(arena_.capacity()) +
                                            ": " + cudaGetErrorString(error));
  }
}

DevicePool::~DevicePool() {
  cudaFree(base_);  // nothing to report to: the backend is going away
}

void* DevicePool::allocate(std::uint64_t bytes, const char* what) {
  std::lock_guard lock(mutex_);
  const auto offset = arena_.allocate(bytes);
  if (!offset) {
    fail(ErrorCode::kResourceExhausted,
         std::string("cuda: the device pool cannot hold ") + what + " of " + mib(bytes) + " (" +
             mib(arena_.available()) + " free of " + mib(arena_.capacity()) + ", largest piece " +
             mib(arena_.largest_free()) + "); lower kv.blocks or raise kv.gpu_memory_fraction");
  }
  return static_cast<char*>(base_) + *offset;
}

void DevicePool::release(void* p) {
  std::lock_guard lock(mutex_);
  arena_.release(static_cast<std::uint64_t>(static_cast<char*>(p) - static_cast<char*>(base_)));
}

std::uint64_t DevicePool::capacity() const {
  std::lock_guard lock(mutex_);
  return arena_.capacity();
}

std::uint64_t DevicePool::used() const {
  std::lock_guard lock(mutex_);
  return arena_.used();
}

std::uint64_t DevicePool::available() const {
  std::lock_guard lock(mutex_);
  return arena_.available();
}

}  // namespace conveyor::cuda
