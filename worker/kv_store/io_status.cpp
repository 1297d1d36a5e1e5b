#include "worker/kv_store/io_status.h"

#include <cerrno>
#include <cstring>

namespace conveyor {

Status io_error_status(int err, const std::string& what) {
  const bool full = err == ENOSPC || err == EDQUOT || err == EFBIG;
  return Status(full ? ErrorCode::kResourceExhausted : ErrorCode::kIo,
                what + ": " + std::strerror(err));
}

}  // namespace conveyor
