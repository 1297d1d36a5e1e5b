#ifdef CONVEYOR_WITH_UCX
#include "worker/transport/ucx_endpoint.h"

#include <cstdio>
#include <cstdlib>

#include "worker/transport/ucx_request.h"
#include "worker/transport/ucx_status.h"

namespace conveyor {
namespace {

// How long a force-close may take to hand back the requests it cancels.
constexpr std::chrono::seconds kForceCloseTimeout{5};

}  // namespace

Expected<std::unique_ptr<UcxEndpoint>> UcxEndpoint::connect(UcxWorker& worker,
                                                            const SocketAddress& address,
                                                            std::chrono::milliseconds timeout) {
  const auto deadline = UcxWorker::Clock::now() + timeout;
  std::unique_ptr<UcxEndpoint> endpoint(new UcxEndpoint(worker));
  ucp_ep_params_t params{};
  params.field_mask = UCP_EP_PARAM_FIELD_FLAGS | UCP_EP_PARAM_FIELD_SOCK_ADDR;
  params.flags = UCP_EP_PARAMS_FLAGS_CLIENT_SERVER | UCP_EP_PARAMS_FLAGS_SEND_CLIENT_ID;
  params.sockaddr.addr = address.get();
  params.sockaddr.addrlen = address.length;
  const std::string where = format_address(address.host, address.port);
  if (Status s = endpoint->create(params); !s.ok()) {
    return Status(s.code(), "connecting to " + where + ": " + s.message());
  }
  // A flush completes once the connection is wired up (or fails when it cannot be).
  ucp_request_param_t flush{};
  UcxRequest request(ucp_ep_flush_nbx(endpoint->endpoint_, &flush));
  const bool done = worker.run_until([&] { return request.done() || endpoint->failed_; }, deadline);
  if (endpoint->failed_) {
    return Status(ErrorCode::kUnavailable,
                  "connecting to " + where + ": " + endpoint->failure_.message());
  }
  if (!done) {
    endpoint->close(false, std::chrono::milliseconds(0));
    return Status(ErrorCode::kUnavailable, "connecting to " + where + ": timed out after " +
                                               std::to_string(timeout.count()) + " ms");
  }
  if (Status s = ucx_status(request.status(), "connecting to " + where); !s.ok()) return s;
  return endpoint;
}

Expected<std::unique_ptr<UcxEndpoint>> UcxEndpoint::accept(UcxWorker& worker,
                                                           ucp_conn_request_h request) {
  std::unique_ptr<UcxEndpoint> endpoint(new UcxEndpoint(worker));
  ucp_ep_params_t params{};
  params.field_mask = UCP_EP_PARAM_FIELD_CONN_REQUEST;
  params.conn_request = request;
  if (Status s = endpoint->create(params); !s.ok()) return s;
  return endpoint;
}

Status UcxEndpoint::create(const ucp_ep_params_t& base) {
  ucp_ep_params_t params = base;
  // Peer failure handling: without it a lost peer hangs outstanding requests.
  params.field_mask |= UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE | UCP_EP_PARAM_FIELD_ERR_HANDLER;
  params.err_mode = UCP_ERR_HANDLING_MODE_PEER;
  params.err_handler.cb = &UcxEndpoint::on_error;
  params.err_handler.arg = this;
  return ucx_status(ucp_ep_create(worker_.handle(), &params, &endpoint_), "ucp_ep_create");
}

void UcxEndpoint::on_error(void* arg, ucp_ep_h, ucs_status_t status) {
  auto* self = static_cast<UcxEndpoint*>(arg);
  if (self->failed_) return;
  self->failed_ = true;
  Status translated = ucx_status(status, "peer lost");
  self->failure_ = Status(ErrorCode::kUnavailable, translated.message());
}

UcxEndpoint::~UcxEndpoint() {
  close(false, std::chrono::milliseconds(0));
}

Status UcxEndpoint::send_tag(std::uint64_t tag, const void* data, std::size_t bytes,
                             const std::atomic<bool>* abort,
                             UcxWorker::Clock::time_point deadline) {
  if (endpoint_ == nullptr) return Status(ErrorCode::kCancelled, "endpoint closed");
  if (failed_) return failure_;
  ucp_request_param_t params{};
  params.op_attr_mask = UCP_OP_ATTR_FIELD_DATATYPE;
  params.datatype = ucp_dt_make_contig(1);
  UcxRequest request(ucp_tag_send_nbx(endpoint_, data, bytes, tag, &params));
  worker_.run_until([&] { return request.done() || failed_; }, deadline, abort);
  if (!request.done()) {
    // Aborted, timed out, or the peer failed with the send still outstanding: a
    // force-close completes it, after which UCX no longer reads `data`.
    const bool aborted = abort != nullptr && abort->load();
    const bool failed = failed_;
    close(false, std::chrono::milliseconds(0));
    if (!failed && aborted) return Status(ErrorCode::kCancelled, "send cancelled by close()");
    if (!failed) return Status(ErrorCode::kUnavailable, "send timed out");
  }
  if (failed_) return failure_;
  return ucx_status(request.status(), "ucp_tag_send_nbx");
}

void UcxEndpoint::close(bool flush, std::chrono::milliseconds timeout) {
  if (endpoint_ == nullptr) return;
  if (flush && !failed_) {
    ucp_request_param_t params{};
    UcxRequest flushed(ucp_ep_flush_nbx(endpoint_, &params));
    worker_.run_until([&] { return flushed.done() || failed_; }, UcxWorker::Clock::now() + timeout);
  }
  // Always a force-close once flushed: the peer learns of it as a disconnect either
  // way, and a graceful close could wait on a peer that is gone.
  ucp_ep_h endpoint = std::exchange(endpoint_, nullptr);
  ucp_request_param_t params{};
  params.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS;
  params.flags = UCP_EP_CLOSE_FLAG_FORCE;
  UcxRequest request(ucp_ep_close_nbx(endpoint, &params));
  worker_.run_until([&] { return request.done(); }, UcxWorker::Clock::now() + kForceCloseTimeout);
}

std::string UcxEndpoint::transport_info() const {
  if (endpoint_ == nullptr) return "";
  char* text = nullptr;
  std::size_t size = 0;
  FILE* stream = ::open_memstream(&text, &size);
  if (stream == nullptr) return "";
  ucp_ep_print_info(endpoint_, stream);
  std::fclose(stream);
  std::string info(text, size);
  std::free(text);
  return info;
}

}  // namespace conveyor
#endif  // CONVEYOR_WITH_UCX
