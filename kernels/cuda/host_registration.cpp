#include "kernels/cuda/host_registration.h"

#include <cuda_runtime.h>

#include "kernels/cuda/cuda_check.h"

namespace conveyor::cuda {

namespace {

class HostRegistration final : public HostPinning {
 public:
  HostRegistration(int device, void* data) : device_(device), data_(data) {}
  ~HostRegistration() override {
    // A destructor cannot report: a failure leaves the range registered until the
    // process exits, and its error is cleared so that no later check reports it.
    if (cudaSetDevice(device_) != cudaSuccess || cudaHostUnregister(data_) != cudaSuccess) {
      cudaGetLastError();
    }
  }
  HostRegistration(const HostRegistration&) = delete;
  HostRegistration& operator=(const HostRegistration&) = delete;

 private:
  int device_;
  void* data_;
};

}  // namespace

std::unique_ptr<HostPinning> register_host(int device, void* data, std::size_t bytes,
                                           unsigned int flags) {
  const cudaError_t error = cudaHostRegister(data, bytes, flags);
  if (error != cudaSuccess) {
    // Not a sticky error: cleared, or the next launch check would report it as its own.
    cudaGetLastError();
    fail_cuda(error, "cudaHostRegister", __FILE__, __LINE__);
  }
  return std::make_unique<HostRegistration>(device, data);
}

std::unique_ptr<HostPinning> register_host_read_only(int device, const void* data,
                                                     std::size_t bytes) {
  int read_only = 0;
  CONVEYOR_CUDA(
      cudaDeviceGetAttribute(&read_only, cudaDevAttrHostRegisterReadOnlySupported, device));
  // The driver only reads the range either way; without read-only registration, a
  // read-only mapping is refused (and stays unpinned).
  return register_host(device, const_cast<void*>(data), bytes,
                       read_only != 0 ? cudaHostRegisterReadOnly : cudaHostRegisterDefault);
}

}  // namespace conveyor::cuda
