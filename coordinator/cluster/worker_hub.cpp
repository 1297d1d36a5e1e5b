#include "coordinator/cluster/worker_hub.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <set>

#include "worker/node/control_codec.h"

namespace conveyor {

WorkerHub::WorkerHub(zmq::context_t& context, WorkerHubOptions options)
    : options_(std::move(options)), router_(context, zmq::socket_type::router) {
  wakeup_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wakeup_fd_ < 0) fail(ErrorCode::kIo, "eventfd failed");
}

WorkerHub::~WorkerHub() {
  if (wakeup_fd_ >= 0) ::close(wakeup_fd_);
}

Status WorkerHub::bind() {
  try {
    // A reply to a worker that is gone fails at once (EHOSTUNREACH) instead of being
    // dropped silently; bounded queues and message sizes keep a flood bounded.
    router_.set(zmq::sockopt::router_mandatory, 1);
    // A worker keeps its routing id across reconnections: the new connection takes
    // the id over even while a half-open old one still holds it.
    router_.set(zmq::sockopt::router_handover, 1);
    router_.set(zmq::sockopt::maxmsgsize, static_cast<std::int64_t>(options_.max_message_bytes));
    router_.set(zmq::sockopt::sndhwm, 100000);
    router_.set(zmq::sockopt::rcvhwm, 100000);
    router_.set(zmq::sockopt::linger, 0);
    if (options_.configure_socket) options_.configure_socket(router_);
    router_.bind(options_.endpoint);
    bound_ = router_.get(zmq::sockopt::last_endpoint);
  } catch (const zmq::error_t& e) {
    return Status(ErrorCode::kUnavailable,
                  "cannot listen for workers on " + options_.endpoint + ": " + e.what());
  }
  return {};
}

void WorkerHub::send(const std::string& identity, const ControlMessage& message) {
  send_bytes(identity, encode_control(message));
}

void WorkerHub::send_bytes(const std::string& identity, std::vector<std::uint8_t> bytes) {
  {
    std::lock_guard lock(mutex_);
    outbox_.emplace_back(identity, std::move(bytes));
  }
  const std::uint64_t one = 1;
  (void)!::write(wakeup_fd_, &one, sizeof(one));
}

void WorkerHub::drain_outbox(Handler* handler) {
  std::deque<std::pair<std::string, std::vector<std::uint8_t>>> batch;
  {
    std::lock_guard lock(mutex_);
    batch.swap(outbox_);
  }
  std::set<std::string> unreachable;
  for (auto& [identity, bytes] : batch) {
    if (unreachable.count(identity) != 0) {
      ++unroutable_;
      continue;
    }
    bool sent = false;
    try {
      sent = router_.send(zmq::buffer(identity),
                          zmq::send_flags::sndmore | zmq::send_flags::dontwait) &&
             router_.send(zmq::buffer(bytes), zmq::send_flags::dontwait);
    } catch (const zmq::error_t&) {
      // EHOSTUNREACH (ROUTER_MANDATORY): that worker is gone.
    }
    if (!sent) {
      ++unroutable_;
      unreachable.insert(identity);
    }
  }
  if (handler != nullptr) {
    for (const std::string& identity : unreachable)
      handler->on_unroutable(identity);
  }
}

void WorkerHub::run(Handler& handler, const std::atomic<bool>& stop,
                    std::chrono::milliseconds tick) {
  auto next_tick = std::chrono::steady_clock::now();
  while (!stop.load()) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= next_tick) {
      handler.on_tick();
      next_tick = now + tick;
    }
    zmq::pollitem_t items[] = {{router_.handle(), 0, ZMQ_POLLIN, 0},
                               {nullptr, wakeup_fd_, ZMQ_POLLIN, 0}};
    const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next_tick - now);
    try {
      zmq::poll(items, 2, std::max(wait, std::chrono::milliseconds(1)));
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) continue;  // a signal: `stop` may be set now
      throw;
    }
    if (items[1].revents & ZMQ_POLLIN) {
      std::uint64_t count = 0;
      (void)!::read(wakeup_fd_, &count, sizeof(count));
    }
    drain_outbox(&handler);
    // A bounded batch per round, so that a flood of results cannot starve the tick
    // (heartbeats, liveness).
    for (int handled = 0; handled < 1000; ++handled) {
      zmq::message_t identity, payload;
      if (!router_.recv(identity, zmq::recv_flags::dontwait)) break;
      if (!identity.more() || !router_.recv(payload, zmq::recv_flags::dontwait)) {
        ++malformed_;
        continue;
      }
      if (payload.more()) {  // a message of more frames than ours: drop all of it
        ++malformed_;
        zmq::message_t extra;
        while (router_.recv(extra, zmq::recv_flags::dontwait) && extra.more()) {
        }
        continue;
      }
      Expected<ControlMessage> message =
          decode_control({static_cast<const std::uint8_t*>(payload.data()), payload.size()});
      if (!message.ok()) {
        ++malformed_;
        continue;
      }
      handler.on_message(identity.to_string(), std::move(message).value());
    }
    drain_outbox(&handler);
  }
}

}  // namespace conveyor
