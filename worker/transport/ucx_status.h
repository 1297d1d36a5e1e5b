// UCX status codes translated into conveyor Status where they are first seen.
#pragma once
#ifdef CONVEYOR_WITH_UCX

#include <ucs/type/status.h>

#include <string>

#include "common/status.h"

namespace conveyor {

// OK for UCS_OK; otherwise "what: <UCX's text>" with the code that fits: a lost or
// refused peer is kUnavailable, a cancelled request kCancelled, a truncated message
// kMalformed, and so on.
Status ucx_status(ucs_status_t status, const std::string& what);

}  // namespace conveyor

#endif  // CONVEYOR_WITH_UCX
