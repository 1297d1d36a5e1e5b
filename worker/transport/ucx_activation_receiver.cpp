#include "worker/transport/ucx_activation_receiver.h"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include "worker/transport/activation_inbox.h"

#ifdef CONVEYOR_WITH_UCX
#include "worker/transport/activation_header.h"
#include "worker/transport/socket_address.h"
#include "worker/transport/ucx_endpoint.h"
#include "worker/transport/ucx_listener.h"
#include "worker/transport/ucx_request.h"
#include "worker/transport/ucx_status.h"
#include "worker/transport/ucx_worker.h"
#endif

namespace conveyor {

#ifdef CONVEYOR_WITH_UCX

namespace {

// The longest the receiver thread sleeps between looks when nothing wakes it.
constexpr std::chrono::milliseconds kIdleWait{50};
// How long shutdown waits for cancelled requests to be handed back.
constexpr std::chrono::seconds kCancelTimeout{5};

std::string sender_name(std::uint32_t sender) {
  return "sender " + std::to_string(sender);
}

}  // namespace

class UcxActivationReceiver::Impl {
 public:
  explicit Impl(UcxReceiverOptions options) : options_(options) {}
  ~Impl() { stop(); }

  Status start(const std::string& host, std::uint16_t port) {
    auto bind = resolve_address(host, port);
    if (!bind.ok()) return bind.status();
    auto worker = UcxWorker::create();
    if (!worker.ok()) return worker.status();
    worker_ = std::move(*worker);
    auto listener =
        UcxListener::create(*worker_, *bind, [this](ucp_conn_request_h r) { on_connection(r); });
    if (!listener.ok()) return listener.status();
    listener_ = std::move(*listener);
    address_ = format_address(host, listener_->port());
    {
      std::lock_guard lock(describe_mutex_);
      description_ = worker_->context().summary();
    }
    thread_ = std::thread([this] { run(); });
    return {};
  }

  const std::string& address() const { return address_; }
  const UcxContext& context() const { return worker_->context(); }

  std::string describe() const {
    std::lock_guard lock(describe_mutex_);
    return description_;
  }

  Expected<Activations> receive(std::optional<ActivationInbox::Clock::time_point> deadline) {
    auto item = inbox_.pop(deadline);
    // The thread stops taking messages in while the inbox is full: tell it there is room.
    worker_->signal();
    if (!item.ok()) return item.status();
    last_epoch_.store(item->epoch);
    return std::move(item->activations);
  }

  std::uint64_t last_epoch() const { return last_epoch_.load(); }
  std::size_t connected_senders() const { return connected_.load(); }

  void stop() {
    std::lock_guard lock(stop_mutex_);
    stopping_.store(true);
    inbox_.close();
    if (thread_.joinable()) {
      worker_->signal();
      thread_.join();
    }
  }

 private:
  struct Connection {
    std::uint32_t sender = 0;
    std::unique_ptr<UcxEndpoint> endpoint;
    bool goodbye = false;   // closed on purpose: its end is no failure
    bool reported = false;  // its loss was already reported
    bool described = false;
  };
  enum class Stage { kIdle, kHeader, kPayload };
  struct InFlight {
    Stage stage = Stage::kIdle;
    std::uint32_t sender = 0;
    UcxRequest request;
    bool cancelled = false;
    std::array<std::uint8_t, kActivationHeaderBytes> header_bytes{};
    ActivationHeader header;
    std::vector<float> payload;
  };

  // ---- the receiver thread: everything below runs on it ----

  void run() {
    while (!stopping_.load()) {
      const bool progressed = worker_->progress();
      const bool stepped = step(!progressed);
      if (progressed || stepped) continue;
      worker_->wait(kIdleWait);
    }
    shutdown();
  }

  // One move of the receive state machine; true when it did something. `idle`: the
  // worker had nothing left to progress, so whatever a lost sender delivered has been
  // read and its loss can be acted on.
  bool step(bool idle) {
    background_.erase(std::remove_if(background_.begin(), background_.end(),
                                     [](const UcxRequest& r) { return r.done(); }),
                      background_.end());
    if (take_goodbye()) return true;
    if (in_flight_.stage != Stage::kIdle) {
      if (in_flight_.request.done()) {
        finish_in_flight();
        return true;
      }
      if (idle) cancel_if_sender_lost();
      return false;
    }
    if (inbox_.size() >= options_.inbox_depth) return false;
    if (start_header()) return true;
    return idle && reap_lost_connections();
  }

  void on_connection(ucp_conn_request_h request) {
    ucp_conn_request_attr_t attr{};
    attr.field_mask = UCP_CONN_REQUEST_ATTR_FIELD_CLIENT_ID;
    const std::uint32_t sender = ucp_conn_request_query(request, &attr) == UCS_OK
                                     ? static_cast<std::uint32_t>(attr.client_id)
                                     : 0;
    auto endpoint = UcxEndpoint::accept(*worker_, request);
    if (!endpoint.ok()) return;  // the sender sees its connection fail
    auto connection = std::make_unique<Connection>();
    connection->sender = sender;
    connection->endpoint = std::move(*endpoint);
    connections_.push_back(std::move(connection));
    count_connections();
  }

  bool start_header() {
    ucp_tag_recv_info_t info{};
    ucp_tag_message_h message =
        ucp_tag_probe_nb(worker_->handle(), activation_tag(ActivationTagKind::kHeader, 0),
                         kActivationKindMask, 1, &info);
    if (message == nullptr) return false;
    in_flight_ = InFlight{};
    in_flight_.stage = Stage::kHeader;
    in_flight_.sender = activation_tag_sender(info.sender_tag);
    // Into the fixed header buffer whatever the message's size: a larger one is
    // truncated (and refused), never allocated for.
    in_flight_.request = UcxRequest(
        ucp_tag_msg_recv_nbx(worker_->handle(), in_flight_.header_bytes.data(),
                             in_flight_.header_bytes.size(), message, &receive_params()));
    return true;
  }

  void finish_in_flight() {
    InFlight done = std::move(in_flight_);
    in_flight_ = InFlight{};
    if (done.stage == Stage::kHeader) {
      finish_header(done);
    } else {
      finish_payload(done);
    }
  }

  void finish_header(InFlight& done) {
    std::size_t length = 0;
    const ucs_status_t status = done.request.receive_status(&length);
    if (status != UCS_OK || length != kActivationHeaderBytes) {
      inbox_.push(Status(ErrorCode::kMalformed,
                         sender_name(done.sender) + ": activation header of the wrong size"));
      return;
    }
    auto header = parse_activation_header(done.header_bytes);
    if (!header.ok()) {
      inbox_.push(Status(header.status().code(),
                         sender_name(done.sender) + ": " + header.status().message()));
      return;
    }
    if (Status s = check_activation_header(*header, options_.max_message_bytes); !s.ok()) {
      // The sender sends the payload regardless: take it into nothing, so its send
      // completes instead of waiting for a receive that never comes.
      drain_payload(done.sender);
      inbox_.push(Status(s.code(), sender_name(done.sender) + ": " + s.message()));
      return;
    }
    Connection* connection = find_connection(done.sender);
    if (connection != nullptr && !connection->described) {
      connection->described = true;
      describe_connection(*connection);
    }
    auto payload = to_expected([&] { return std::vector<float>(header->count); });
    if (!payload.ok()) {
      drain_payload(done.sender);
      inbox_.push(payload.status());
      return;
    }
    in_flight_.stage = Stage::kPayload;
    in_flight_.sender = done.sender;
    in_flight_.header = *header;
    in_flight_.payload = std::move(*payload);
    in_flight_.request = UcxRequest(ucp_tag_recv_nbx(
        worker_->handle(), in_flight_.payload.data(), in_flight_.payload.size() * sizeof(float),
        activation_tag(ActivationTagKind::kPayload, done.sender), kActivationExactMask,
        &receive_params()));
  }

  void finish_payload(InFlight& done) {
    std::size_t length = 0;
    const ucs_status_t status = done.request.receive_status(&length);
    const std::size_t expected = done.payload.size() * sizeof(float);
    if (status == UCS_OK && length == expected) {
      ReceivedActivations received;
      received.activations.step = done.header.step;
      received.activations.hidden = std::move(done.payload);
      received.epoch = done.header.epoch;
      inbox_.push(std::move(received));
      return;
    }
    if (status == UCS_OK || status == UCS_ERR_MESSAGE_TRUNCATED) {
      inbox_.push(Status(ErrorCode::kMalformed,
                         sender_name(done.sender) + ": payload does not match its header"));
      return;
    }
    if (Connection* c = find_connection(done.sender, /*include_failed=*/true)) c->reported = true;
    Status s = ucx_status(status, "receiving a payload");
    inbox_.push(Status(ErrorCode::kUnavailable,
                       sender_name(done.sender) + " lost during a message: " + s.message()));
  }

  // A payload whose sender is gone never arrives: cancel the receive.
  void cancel_if_sender_lost() {
    if (in_flight_.stage != Stage::kPayload || in_flight_.cancelled) return;
    if (find_connection(in_flight_.sender) != nullptr) return;
    in_flight_.cancelled = true;
    ucp_request_cancel(worker_->handle(), in_flight_.request.handle());
  }

  // A sender closing on purpose: remember it, so its disconnect is no failure, and
  // acknowledge, so it disconnects only once that is remembered.
  bool take_goodbye() {
    ucp_tag_recv_info_t info{};
    ucp_tag_message_h message =
        ucp_tag_probe_nb(worker_->handle(), activation_tag(ActivationTagKind::kGoodbye, 0),
                         kActivationKindMask, 1, &info);
    if (message == nullptr) return false;
    const std::uint32_t sender = activation_tag_sender(info.sender_tag);
    background_.emplace_back(
        ucp_tag_msg_recv_nbx(worker_->handle(), nullptr, 0, message, &receive_params()));
    if (Connection* connection = find_connection(sender)) {
      connection->goodbye = true;
      ucp_request_param_t params{};
      background_.emplace_back(
          ucp_tag_send_nbx(connection->endpoint->handle(), nullptr, 0,
                           activation_tag(ActivationTagKind::kGoodbyeAck, sender), &params));
    }
    return true;
  }

  void drain_payload(std::uint32_t sender) {
    background_.emplace_back(ucp_tag_recv_nbx(worker_->handle(), nullptr, 0,
                                              activation_tag(ActivationTagKind::kPayload, sender),
                                              kActivationExactMask, &receive_params()));
  }

  // Removes connections whose peer is gone; reports those that did not say goodbye.
  bool reap_lost_connections() {
    std::vector<std::unique_ptr<Connection>> lost;
    for (auto it = connections_.begin(); it != connections_.end();) {
      if ((*it)->endpoint->failed()) {
        lost.push_back(std::move(*it));
        it = connections_.erase(it);
      } else {
        ++it;
      }
    }
    if (lost.empty()) return false;
    count_connections();
    for (auto& connection : lost) {
      if (!connection->goodbye && !connection->reported) {
        inbox_.push(Status(ErrorCode::kUnavailable, sender_name(connection->sender) +
                                                        " lost without closing: " +
                                                        connection->endpoint->failure().message()));
      }
      // May progress the worker, which may accept new connections: hence the
      // separate list.
      connection->endpoint->close(false, std::chrono::milliseconds(0));
    }
    return true;
  }

  // The newest connection of `sender` (a live one unless include_failed).
  Connection* find_connection(std::uint32_t sender, bool include_failed = false) {
    for (auto it = connections_.rbegin(); it != connections_.rend(); ++it) {
      if ((*it)->sender == sender && (include_failed || !(*it)->endpoint->failed())) {
        return it->get();
      }
    }
    return nullptr;
  }

  void count_connections() {
    std::size_t live = 0;
    for (const auto& c : connections_)
      live += c->endpoint->failed() ? 0 : 1;
    connected_.store(live);
  }

  void describe_connection(const Connection& connection) {
    std::string text = worker_->context().summary();
    const std::string lanes = connection.endpoint->transport_info();
    if (!lanes.empty()) text += "\n" + lanes;
    std::lock_guard lock(describe_mutex_);
    description_ = std::move(text);
  }

  static const ucp_request_param_t& receive_params() {
    static const ucp_request_param_t params = [] {
      ucp_request_param_t p{};
      // Always a request to poll (never "done at once" without the received length).
      p.op_attr_mask = UCP_OP_ATTR_FIELD_DATATYPE | UCP_OP_ATTR_FLAG_NO_IMM_CMPL;
      p.datatype = ucp_dt_make_contig(1);
      return p;
    }();
    return params;
  }

  void shutdown() {
    listener_.reset();
    const auto deadline = UcxWorker::Clock::now() + kCancelTimeout;
    if (in_flight_.stage != Stage::kIdle && !in_flight_.request.done()) {
      ucp_request_cancel(worker_->handle(), in_flight_.request.handle());
    }
    for (auto& request : background_) {
      if (!request.done()) ucp_request_cancel(worker_->handle(), request.handle());
    }
    worker_->run_until(
        [&] {
          if (!in_flight_.request.done()) return false;
          for (const auto& request : background_)
            if (!request.done()) return false;
          return true;
        },
        deadline);
    in_flight_ = InFlight{};
    background_.clear();
    std::vector<std::unique_ptr<Connection>> all = std::move(connections_);
    connections_.clear();
    for (auto& connection : all)
      connection->endpoint->close(false, std::chrono::milliseconds(0));
    connected_.store(0);
  }

  const UcxReceiverOptions options_;
  std::unique_ptr<UcxWorker> worker_;  // first: destroyed after everything that uses it
  std::unique_ptr<UcxListener> listener_;
  std::string address_;
  std::thread thread_;
  std::mutex stop_mutex_;
  std::atomic<bool> stopping_{false};
  ActivationInbox inbox_;
  std::atomic<std::uint64_t> last_epoch_{0};
  std::atomic<std::size_t> connected_{0};
  mutable std::mutex describe_mutex_;
  std::string description_;
  // Owned by the receiver thread.
  std::vector<std::unique_ptr<Connection>> connections_;
  InFlight in_flight_;
  // Requests nobody waits for: payloads drained, goodbyes taken and acknowledged.
  std::vector<UcxRequest> background_;
};

Expected<std::unique_ptr<UcxActivationReceiver>> UcxActivationReceiver::listen(
    const std::string& host, std::uint16_t port, UcxReceiverOptions options) {
  if (options.inbox_depth == 0) {
    return Status(ErrorCode::kInvalidArgument, "inbox_depth must be at least 1");
  }
  auto impl = std::make_unique<Impl>(options);
  if (Status s = impl->start(host, port); !s.ok()) return s;
  return std::unique_ptr<UcxActivationReceiver>(new UcxActivationReceiver(std::move(impl)));
}

std::string UcxActivationReceiver::address() const {
  return impl_->address();
}
std::string UcxActivationReceiver::describe() const {
  return impl_->describe();
}

ActivationChannelCapabilities UcxActivationReceiver::capabilities() const {
  return {"ucx", impl_->context().cuda_memory(), false};
}

Expected<Activations> UcxActivationReceiver::receive() {
  return impl_->receive(std::nullopt);
}

Expected<Activations> UcxActivationReceiver::receive_for(std::chrono::milliseconds timeout) {
  return impl_->receive(ActivationInbox::Clock::now() + timeout);
}

std::uint64_t UcxActivationReceiver::last_epoch() const {
  return impl_->last_epoch();
}
std::size_t UcxActivationReceiver::connected_senders() const {
  return impl_->connected_senders();
}
void UcxActivationReceiver::close() {
  impl_->stop();
}

#else  // !CONVEYOR_WITH_UCX

class UcxActivationReceiver::Impl {};

Expected<std::unique_ptr<UcxActivationReceiver>> UcxActivationReceiver::listen(const std::string&,
                                                                               std::uint16_t,
                                                                               UcxReceiverOptions) {
  return Status(ErrorCode::kUnsupported, "this build has no UCX transport");
}
std::string UcxActivationReceiver::address() const {
  return "";
}
std::string UcxActivationReceiver::describe() const {
  return "UCX: not built";
}
ActivationChannelCapabilities UcxActivationReceiver::capabilities() const {
  return {"ucx", false, false};
}
Expected<Activations> UcxActivationReceiver::receive() {
  return Status(ErrorCode::kUnsupported, "this build has no UCX transport");
}
Expected<Activations> UcxActivationReceiver::receive_for(std::chrono::milliseconds) {
  return receive();
}
std::uint64_t UcxActivationReceiver::last_epoch() const {
  return 0;
}
std::size_t UcxActivationReceiver::connected_senders() const {
  return 0;
}
void UcxActivationReceiver::close() {}

#endif  // CONVEYOR_WITH_UCX

UcxActivationReceiver::UcxActivationReceiver(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
UcxActivationReceiver::~UcxActivationReceiver() {
  close();
}

Status UcxActivationReceiver::send(Activations) {
  return Status(ErrorCode::kUnsupported, "a UCX activation receiver does not send");
}

}  // namespace conveyor
