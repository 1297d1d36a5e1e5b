// Pinning host memory for a stage's backend, never fatally: a refusal (the host out of
// lockable memory, a range pinned already) is logged as a warning, once per process
// with the driver's reason, and the memory is then used unpinned: every copy still
// works, staged by the driver at a lower rate.
#pragma once

#include <cstddef>
#include <memory>

#include "kernels/backend.h"

namespace conveyor {

// Backend::pin_host_memory on `backend` (which must outlive every handle it returns),
// a refusal answered with nullptr.
PinHostMemory host_pinner(Backend& backend);

// Backend::pin_host_memory_read_only the same way: memory the device only reads.
std::unique_ptr<HostPinning> pin_read_only_or_warn(Backend& backend, const void* data,
                                                   std::size_t bytes);

}  // namespace conveyor
