// A producer server on an ephemeral local port with a fake JobService behind it, and
// client options with short timeouts, for the producer tests.
#pragma once

#include <chrono>
#include <thread>

#include <zmq.hpp>

#include "coordinator/producer/producer_client.h"
#include "coordinator/producer/producer_server.h"
#include "tests/producer/fake_job_service.h"

namespace conveyor::testing {

inline ProducerServerOptions local_server_options() {
  ProducerServerOptions o;
  o.endpoint = "tcp://127.0.0.1:*";
  return o;
}

// Members are destroyed server first, context last, as ZeroMQ requires.
struct ProducerHarness {
  explicit ProducerHarness(ProducerServerOptions options = local_server_options(),
                           std::size_t queue_limit = 0)
      : service(queue_limit), server(context, service, std::move(options)) {
    const Status started = server.start();
    if (!started.ok()) throw Error(started.code(), started.message());
  }

  ProducerClientOptions client_options() const {
    ProducerClientOptions o;
    o.endpoint = server.endpoint();
    o.timeout = std::chrono::milliseconds(300);
    o.attempts = 5;
    o.backoff_initial = std::chrono::milliseconds(5);
    o.backoff_max = std::chrono::milliseconds(50);
    return o;
  }

  zmq::context_t context;
  FakeJobService service;
  ProducerServer server;
};

// Polls `done` every millisecond; false if it did not hold within 10 s (a hang, not
// a slow machine).
template <typename Predicate>
bool eventually(Predicate done) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

}  // namespace conveyor::testing
