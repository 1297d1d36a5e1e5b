// A UCP endpoint with peer-failure reporting: either side of a client/server
// connection. Not movable: UCX's error callback holds its address. All calls run on
// the thread that drives the owning worker.
#pragma once
#ifdef CONVEYOR_WITH_UCX

#include <ucp/api/ucp.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "common/status.h"
#include "worker/transport/socket_address.h"
#include "worker/transport/ucx_worker.h"

namespace conveyor {

class UcxEndpoint {
 public:
  // Connects to a listener at `address` and waits (progressing `worker`) until the
  // connection is established: kUnavailable when refused, when the peer cannot be
  // reached, or when `timeout` passes first. The worker's client id travels with the
  // connection request.
  static Expected<std::unique_ptr<UcxEndpoint>> connect(UcxWorker& worker,
                                                        const SocketAddress& address,
                                                        std::chrono::milliseconds timeout);
  // Accepts a connection request that arrived on a listener of `worker`.
  static Expected<std::unique_ptr<UcxEndpoint>> accept(UcxWorker& worker,
                                                       ucp_conn_request_h request);

  // Force-closes the endpoint if close() was not called.
  ~UcxEndpoint();
  UcxEndpoint(const UcxEndpoint&) = delete;
  UcxEndpoint& operator=(const UcxEndpoint&) = delete;

  ucp_ep_h handle() const { return endpoint_; }
  // The peer failed or disconnected; failure() says how (kUnavailable).
  bool failed() const { return failed_; }
  const Status& failure() const { return failure_; }

  // Sends one tag message from `data` (used in place, not copied) and blocks until the
  // buffer may be reused. kUnavailable when the peer fails meanwhile or `deadline`
  // passes; kCancelled when *abort is set first. Either way the endpoint is then
  // force-closed: the only way to take back an outstanding send.
  Status send_tag(std::uint64_t tag, const void* data, std::size_t bytes,
                  const std::atomic<bool>* abort = nullptr,
                  UcxWorker::Clock::time_point deadline = UcxWorker::Clock::time_point::max());

  // Closes the endpoint: `flush` first delivers what was sent (bounded by `timeout`),
  // otherwise outstanding operations are cancelled. Idempotent.
  void close(bool flush, std::chrono::milliseconds timeout);
  bool closed() const { return endpoint_ == nullptr; }

  // UCP's description of the endpoint's lanes and transports (ucp_ep_print_info).
  std::string transport_info() const;

 private:
  explicit UcxEndpoint(UcxWorker& worker) : worker_(worker) {}
  static void on_error(void* arg, ucp_ep_h endpoint, ucs_status_t status);
  Status create(const ucp_ep_params_t& params);

  UcxWorker& worker_;
  ucp_ep_h endpoint_ = nullptr;
  bool failed_ = false;
  Status failure_;
};

}  // namespace conveyor

#endif  // CONVEYOR_WITH_UCX
