#include "worker/transport/ucx_activation_sender.h"

#include <atomic>
#include <mutex>
#include <random>

#ifdef CONVEYOR_WITH_UCX
#include "worker/transport/activation_header.h"
#include "worker/transport/socket_address.h"
#include "worker/transport/ucx_endpoint.h"
#include "worker/transport/ucx_request.h"
#include "worker/transport/ucx_worker.h"
#endif

namespace conveyor {

#ifdef CONVEYOR_WITH_UCX

namespace {

// close() waits this long for the receiver to acknowledge its goodbye.
constexpr std::chrono::seconds kGoodbyeTimeout{1};

std::uint32_t new_sender_id() {
  std::random_device random;
  std::uint32_t id = 0;
  while (id == 0)
    id = random();
  return id;
}

}  // namespace

class UcxActivationSender::Impl {
 public:
  Status connect(const std::string& address, std::chrono::milliseconds timeout) {
    auto target = parse_address(address);
    if (!target.ok()) return target.status();
    auto worker = UcxWorker::create(sender_id_);
    if (!worker.ok()) return worker.status();
    worker_ = std::move(*worker);
    auto endpoint = UcxEndpoint::connect(*worker_, *target, timeout);
    if (!endpoint.ok()) return endpoint.status();
    endpoint_ = std::move(*endpoint);
    description_ = worker_->context().summary();
    if (const std::string lanes = endpoint_->transport_info(); !lanes.empty()) {
      description_ += "\n" + lanes;
    }
    return {};
  }

  ~Impl() { close(); }

  void set_epoch(std::uint64_t epoch) { epoch_.store(epoch); }
  const std::string& describe() const { return description_; }
  const UcxContext& context() const { return worker_->context(); }

  Status send(const Activations& activations) {
    if (closing_.load()) return cancelled();
    std::lock_guard lock(mutex_);
    if (closed_) return cancelled();
    ActivationHeader header;
    header.epoch = epoch_.load();
    header.step = activations.step;
    header.count = activations.hidden.size();
    const auto header_bytes = encode_activation_header(header);
    // Progressing first picks up a disconnect already signalled, so a send to a
    // receiver known to be gone fails at once.
    worker_->progress();
    if (Status s = endpoint_->send_tag(activation_tag(ActivationTagKind::kHeader, sender_id_),
                                       header_bytes.data(), header_bytes.size(), &closing_);
        !s.ok()) {
      return s;
    }
    return endpoint_->send_tag(activation_tag(ActivationTagKind::kPayload, sender_id_),
                               activations.hidden.data(), activations.hidden.size() * sizeof(float),
                               &closing_);
  }

  void close() {
    closing_.store(true);
    if (worker_) worker_->signal();
    std::lock_guard lock(mutex_);
    if (closed_ || !endpoint_) return;
    closed_ = true;
    if (!endpoint_->closed() && !endpoint_->failed()) say_goodbye();
    endpoint_->close(false, std::chrono::milliseconds(0));
  }

 private:
  // Sends the goodbye and waits (bounded) for the receiver to acknowledge it.
  void say_goodbye() {
    const auto deadline = UcxWorker::Clock::now() + kGoodbyeTimeout;
    ucp_request_param_t params{};
    params.op_attr_mask = UCP_OP_ATTR_FLAG_NO_IMM_CMPL;
    UcxRequest ack(ucp_tag_recv_nbx(worker_->handle(), nullptr, 0,
                                    activation_tag(ActivationTagKind::kGoodbyeAck, sender_id_),
                                    kActivationExactMask, &params));
    if (endpoint_
            ->send_tag(activation_tag(ActivationTagKind::kGoodbye, sender_id_), nullptr, 0, nullptr,
                       deadline)
            .ok()) {
      worker_->run_until([&] { return ack.done() || endpoint_->failed(); }, deadline);
    }
    if (!ack.done()) ucp_request_cancel(worker_->handle(), ack.handle());
  }

  static Status cancelled() { return Status(ErrorCode::kCancelled, "activation sender closed"); }

  const std::uint32_t sender_id_ = new_sender_id();
  std::unique_ptr<UcxWorker> worker_;  // first: destroyed after the endpoint
  std::unique_ptr<UcxEndpoint> endpoint_;
  std::string description_;
  std::atomic<std::uint64_t> epoch_{0};
  std::atomic<bool> closing_{false};
  std::mutex mutex_;  // one send at a time; close() waits for it
  bool closed_ = false;
};

Expected<std::unique_ptr<UcxActivationSender>> UcxActivationSender::connect(
    const std::string& address, std::chrono::milliseconds timeout) {
  auto impl = std::make_unique<Impl>();
  if (Status s = impl->connect(address, timeout); !s.ok()) return s;
  return std::unique_ptr<UcxActivationSender>(new UcxActivationSender(std::move(impl)));
}

void UcxActivationSender::set_epoch(std::uint64_t epoch) {
  impl_->set_epoch(epoch);
}
std::string UcxActivationSender::describe() const {
  return impl_->describe();
}
ActivationChannelCapabilities UcxActivationSender::capabilities() const {
  return {"ucx", impl_->context().cuda_memory(), false};
}
Status UcxActivationSender::send(Activations activations) {
  return impl_->send(activations);
}
void UcxActivationSender::close() {
  impl_->close();
}

#else  // !CONVEYOR_WITH_UCX

class UcxActivationSender::Impl {};

Expected<std::unique_ptr<UcxActivationSender>> UcxActivationSender::connect(
    const std::string&, std::chrono::milliseconds) {
  return Status(ErrorCode::kUnsupported, "this build has no UCX transport");
}
void UcxActivationSender::set_epoch(std::uint64_t) {}
std::string UcxActivationSender::describe() const {
  return "UCX: not built";
}
ActivationChannelCapabilities UcxActivationSender::capabilities() const {
  return {"ucx", false, false};
}
Status UcxActivationSender::send(Activations) {
  return Status(ErrorCode::kUnsupported, "this build has no UCX transport");
}
void UcxActivationSender::close() {}

#endif  // CONVEYOR_WITH_UCX

UcxActivationSender::UcxActivationSender(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
UcxActivationSender::~UcxActivationSender() {
  close();
}

Expected<Activations> UcxActivationSender::receive() {
  return Status(ErrorCode::kUnsupported, "a UCX activation sender does not receive");
}

}  // namespace conveyor
