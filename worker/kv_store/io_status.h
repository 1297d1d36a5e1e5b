// errno from file I/O as a Status, translated where the error is first seen.
#pragma once

#include <string>

#include "common/status.h"

namespace conveyor {

// "<what>: <strerror>". A full disk or quota (ENOSPC, EDQUOT, EFBIG) is
// kResourceExhausted: the caller recomputes the blocks instead of swapping them; every
// other errno is kIo.
Status io_error_status(int err, const std::string& what);

}  // namespace conveyor
