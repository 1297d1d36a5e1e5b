// A UCP listener: accepts client/server connection requests on a socket address.
// Requests are handed to the handler from inside the worker's progress(), on the
// thread that drives the worker.
#pragma once
#ifdef CONVEYOR_WITH_UCX

#include <ucp/api/ucp.h>

#include <cstdint>
#include <functional>
#include <memory>

#include "common/status.h"
#include "worker/transport/socket_address.h"
#include "worker/transport/ucx_worker.h"

namespace conveyor {

class UcxListener {
 public:
  using Handler = std::function<void(ucp_conn_request_h)>;

  // Listens on `address` (port 0: an ephemeral port; port() tells which).
  // kUnavailable when the address is taken or cannot be bound.
  static Expected<std::unique_ptr<UcxListener>> create(UcxWorker& worker,
                                                       const SocketAddress& address,
                                                       Handler handler);
  ~UcxListener();
  UcxListener(const UcxListener&) = delete;
  UcxListener& operator=(const UcxListener&) = delete;

  std::uint16_t port() const { return port_; }

 private:
  explicit UcxListener(Handler handler) : handler_(std::move(handler)) {}
  static void on_connection(ucp_conn_request_h request, void* arg);

  Handler handler_;
  ucp_listener_h listener_ = nullptr;
  std::uint16_t port_ = 0;
};

}  // namespace conveyor

#endif  // CONVEYOR_WITH_UCX
