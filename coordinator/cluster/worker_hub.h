// WorkerHub: the coordinator's end of the control plane to its workers: a ROUTER
// socket (ROUTER_MANDATORY, bounded message size and queues) owned by one thread.
// Incoming messages are decoded and handed to a handler on that thread; any thread
// may send, through an outbox the hub thread drains (ZeroMQ sockets are not
// thread-safe), woken by an eventfd so that a step plan leaves at once.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "common/status.h"
#include "worker/node/control_message.h"

namespace conveyor {

struct WorkerHubOptions {
  std::string endpoint = "tcp://0.0.0.0:5556";
  std::uint64_t max_message_bytes = 64ull << 20;
  // Applied before bind: CurveZMQ server keys and the ZAP domain.
  std::function<void(zmq::socket_t&)> configure_socket;
};

class WorkerHub {
 public:
  class Handler {
   public:
    virtual ~Handler() = default;
    // `identity`: the worker's routing id, to address replies.
    virtual void on_message(const std::string& identity, ControlMessage message) = 0;
    virtual void on_tick() = 0;
    // A message to `identity` could not be delivered (that peer is gone).
    virtual void on_unroutable(const std::string& identity) { (void)identity; }
  };

  WorkerHub(zmq::context_t& context, WorkerHubOptions options);
  ~WorkerHub();
  WorkerHub(const WorkerHub&) = delete;
  WorkerHub& operator=(const WorkerHub&) = delete;

  // kUnavailable naming the endpoint when it cannot bind.
  Status bind();
  std::string endpoint() const { return bound_; }

  // Thread-safe; the message leaves from the hub thread.
  void send(const std::string& identity, const ControlMessage& message);
  void send_bytes(const std::string& identity, std::vector<std::uint8_t> bytes);

  // Runs on this thread until `stop`; on_tick about every `tick`.
  void run(Handler& handler, const std::atomic<bool>& stop, std::chrono::milliseconds tick);

  std::uint64_t unroutable() const { return unroutable_.load(); }
  std::uint64_t malformed() const { return malformed_.load(); }

 private:
  void drain_outbox(Handler* handler);

  WorkerHubOptions options_;
  zmq::socket_t router_;
  std::string bound_;
  int wakeup_fd_ = -1;
  std::mutex mutex_;
  std::deque<std::pair<std::string, std::vector<std::uint8_t>>> outbox_;
  std::atomic<std::uint64_t> unroutable_{0};
  std::atomic<std::uint64_t> malformed_{0};
};

}  // namespace conveyor
