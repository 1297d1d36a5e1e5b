#ifdef CONVEYOR_WITH_UCX
#include "worker/transport/ucx_listener.h"

#include <netinet/in.h>

#include "worker/transport/ucx_status.h"

namespace conveyor {
namespace {

std::uint16_t port_of(const sockaddr_storage& address) {
  if (address.ss_family == AF_INET) {
    return ntohs(reinterpret_cast<const sockaddr_in&>(address).sin_port);
  }
  if (address.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6&>(address).sin6_port);
  }
  return 0;
}

}  // namespace

Expected<std::unique_ptr<UcxListener>> UcxListener::create(UcxWorker& worker,
                                                           const SocketAddress& address,
                                                           Handler handler) {
  std::unique_ptr<UcxListener> listener(new UcxListener(std::move(handler)));
  ucp_listener_params_t params{};
  params.field_mask = UCP_LISTENER_PARAM_FIELD_SOCK_ADDR | UCP_LISTENER_PARAM_FIELD_CONN_HANDLER;
  params.sockaddr.addr = address.get();
  params.sockaddr.addrlen = address.length;
  params.conn_handler.cb = &UcxListener::on_connection;
  params.conn_handler.arg = listener.get();
  const std::string where = format_address(address.host, address.port);
  if (Status s = ucx_status(ucp_listener_create(worker.handle(), &params, &listener->listener_),
                            "listening on " + where);
      !s.ok()) {
    listener->listener_ = nullptr;
    return Status(ErrorCode::kUnavailable, s.message());
  }
  ucp_listener_attr_t attr{};
  attr.field_mask = UCP_LISTENER_ATTR_FIELD_SOCKADDR;
  if (Status s = ucx_status(ucp_listener_query(listener->listener_, &attr), "ucp_listener_query");
      !s.ok()) {
    return s;
  }
  listener->port_ = port_of(attr.sockaddr);
  return listener;
}

UcxListener::~UcxListener() {
  if (listener_ != nullptr) ucp_listener_destroy(listener_);
}

void UcxListener::on_connection(ucp_conn_request_h request, void* arg) {
  static_cast<UcxListener*>(arg)->handler_(request);
}

}  // namespace conveyor
#endif  // CONVEYOR_WITH_UCX
