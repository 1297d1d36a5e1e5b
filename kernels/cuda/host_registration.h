// Host memory registered with cudaHostRegister (page-locked, so that copies to and from
// it are DMA without the driver's staging), unregistered when the handle goes: the CUDA
// backend's Backend::pin_host_memory.
#pragma once

#include <cstddef>
#include <memory>

#include "kernels/host_pinning.h"

namespace conveyor::cuda {

// Registers [data, data + bytes) for `device` (the caller's current device) with
// cudaHostRegister's `flags`. Throws Error with the driver's reason when it refuses,
// leaving no error behind for the next check.
std::unique_ptr<HostPinning> register_host(int device, void* data, std::size_t bytes,
                                           unsigned int flags);

// As register_host, read-only where the device supports it (a read-only mapping of a
// model file); elsewhere a plain registration, which refuses memory that is not writable.
std::unique_ptr<HostPinning> register_host_read_only(int device, const void* data,
                                                     std::size_t bytes);

}  // namespace conveyor::cuda
