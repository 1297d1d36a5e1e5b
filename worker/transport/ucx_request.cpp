#ifdef CONVEYOR_WITH_UCX
#include "worker/transport/ucx_request.h"

namespace conveyor {

UcxRequest::UcxRequest(ucs_status_ptr_t result) {
  if (UCS_PTR_IS_ERR(result)) {
    status_ = UCS_PTR_STATUS(result);
  } else if (result != nullptr) {
    request_ = result;
  }
}

UcxRequest::~UcxRequest() {
  if (request_ != nullptr) ucp_request_free(request_);
}

UcxRequest& UcxRequest::operator=(UcxRequest&& other) noexcept {
  if (this != &other) {
    if (request_ != nullptr) ucp_request_free(request_);
    request_ = std::exchange(other.request_, nullptr);
    status_ = other.status_;
  }
  return *this;
}

ucs_status_t UcxRequest::status() const {
  if (request_ == nullptr) return status_;
  return ucp_request_check_status(request_);
}

ucs_status_t UcxRequest::receive_status(std::size_t* length) const {
  if (request_ == nullptr) return status_;
  ucp_tag_recv_info_t info{};
  const ucs_status_t status = ucp_tag_recv_request_test(request_, &info);
  if (status == UCS_OK && length != nullptr) *length = info.length;
  return status;
}

}  // namespace conveyor
#endif  // CONVEYOR_WITH_UCX
