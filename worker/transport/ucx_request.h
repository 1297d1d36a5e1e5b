// An outstanding UCP request (the result of a *_nbx call), polled for completion
// instead of completed through a callback, so no callback can outlive the stack frame
// that waits for it. The request is released on destruction; the caller keeps the
// operation's buffer alive until done() (or until the endpoint was force-closed,
// which completes every request on it).
#pragma once
#ifdef CONVEYOR_WITH_UCX

#include <ucp/api/ucp.h>

#include <cstddef>
#include <utility>

namespace conveyor {

class UcxRequest {
 public:
  UcxRequest() = default;
  // `result`: NULL (completed at once), an error pointer, or a request.
  explicit UcxRequest(ucs_status_ptr_t result);
  ~UcxRequest();
  UcxRequest(UcxRequest&& other) noexcept
      : request_(std::exchange(other.request_, nullptr)), status_(other.status_) {}
  UcxRequest& operator=(UcxRequest&& other) noexcept;
  UcxRequest(const UcxRequest&) = delete;
  UcxRequest& operator=(const UcxRequest&) = delete;

  bool done() const { return status() != UCS_INPROGRESS; }
  ucs_status_t status() const;
  void* handle() const { return request_; }
  // A tag receive's outcome and the received length; valid once done().
  ucs_status_t receive_status(std::size_t* length) const;

 private:
  void* request_ = nullptr;
  ucs_status_t status_ = UCS_OK;  // when request_ is null
};

}  // namespace conveyor

#endif  // CONVEYOR_WITH_UCX
