#ifdef CONVEYOR_WITH_UCX
#include "worker/transport/ucx_status.h"

namespace conveyor {
namespace {

ErrorCode code_for(ucs_status_t status) {
  if (UCS_IS_LINK_ERROR(status) || UCS_IS_ENDPOINT_ERROR(status)) return ErrorCode::kUnavailable;
  switch (status) {
    case UCS_ERR_UNREACHABLE:
    case UCS_ERR_CONNECTION_RESET:
    case UCS_ERR_NOT_CONNECTED:
    case UCS_ERR_REJECTED:
    case UCS_ERR_TIMED_OUT:
    case UCS_ERR_IO_ERROR:
    case UCS_ERR_BUSY:
    case UCS_ERR_SOME_CONNECTS_FAILED:
      return ErrorCode::kUnavailable;
    case UCS_ERR_CANCELED:
      return ErrorCode::kCancelled;
    case UCS_ERR_NO_MEMORY:
    case UCS_ERR_NO_RESOURCE:
    case UCS_ERR_EXCEEDS_LIMIT:
      return ErrorCode::kResourceExhausted;
    case UCS_ERR_UNSUPPORTED:
    case UCS_ERR_NOT_IMPLEMENTED:
    case UCS_ERR_NO_DEVICE:
      return ErrorCode::kUnsupported;
    case UCS_ERR_INVALID_PARAM:
    case UCS_ERR_INVALID_ADDR:
      return ErrorCode::kInvalidArgument;
    case UCS_ERR_MESSAGE_TRUNCATED:
      return ErrorCode::kMalformed;
    case UCS_ERR_OUT_OF_RANGE:
      return ErrorCode::kOutOfRange;
    default:
      return ErrorCode::kInternal;
  }
}

}  // namespace

Status ucx_status(ucs_status_t status, const std::string& what) {
  if (status == UCS_OK) return {};
  return Status(code_for(status), what + ": " + ucs_status_string(status));
}

}  // namespace conveyor
#endif  // CONVEYOR_WITH_UCX
