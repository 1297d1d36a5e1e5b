#ifdef CONVEYOR_WITH_UCX
#include "worker/transport/ucx_worker.h"

#include <poll.h>

#include <thread>

#include "worker/transport/ucx_status.h"

namespace conveyor {

Expected<std::unique_ptr<UcxWorker>> UcxWorker::create(std::optional<std::uint64_t> client_id) {
  auto context = UcxContext::shared();
  if (!context.ok()) return context.status();
  ucp_worker_params_t params{};
  params.field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE;
  // One thread at a time, but not always the same one (a receiver is made on the
  // caller's thread and driven by its own).
  params.thread_mode = UCS_THREAD_MODE_SERIALIZED;
  if (client_id) {
    params.field_mask |= UCP_WORKER_PARAM_FIELD_CLIENT_ID;
    params.client_id = *client_id;
  }
  ucp_worker_h worker = nullptr;
  if (Status s = ucx_status(ucp_worker_create((*context)->handle(), &params, &worker),
                            "ucp_worker_create");
      !s.ok()) {
    return s;
  }
  int fd = -1;
  if (ucp_worker_get_efd(worker, &fd) != UCS_OK) fd = -1;
  return std::unique_ptr<UcxWorker>(new UcxWorker(std::move(*context), worker, fd));
}

UcxWorker::UcxWorker(std::shared_ptr<UcxContext> context, ucp_worker_h worker, int event_fd)
    : context_(std::move(context)), worker_(worker), event_fd_(event_fd) {}

UcxWorker::~UcxWorker() {
  ucp_worker_destroy(worker_);
}

bool UcxWorker::progress() {
  bool any = false;
  while (ucp_worker_progress(worker_) != 0)
    any = true;
  if (any) idle_wait_ = kFirstIdleWait;
  return any;
}

void UcxWorker::wait(std::chrono::milliseconds timeout) {
  if (event_fd_ < 0) {
    std::this_thread::sleep_for(std::min(timeout, std::chrono::milliseconds(1)));
    return;
  }
  const ucs_status_t armed = ucp_worker_arm(worker_);
  // Busy: events arrived since the last progress(); the caller progresses again.
  if (armed == UCS_ERR_BUSY) return;
  if (armed != UCS_OK) {
    std::this_thread::sleep_for(std::min(timeout, std::chrono::milliseconds(1)));
    return;
  }
  pollfd fd{event_fd_, POLLIN, 0};
  const int woken = ::poll(&fd, 1, static_cast<int>(std::min(timeout, idle_wait_).count()));
  if (woken == 0) idle_wait_ = std::min(idle_wait_ * 2, kMaxIdleWait);
}

void UcxWorker::signal() {
  ucp_worker_signal(worker_);
}

}  // namespace conveyor
#endif  // CONVEYOR_WITH_UCX
