// ProducerServer: the coordinator's producer-facing ROUTER socket. Producers (DEALER
// sockets) submit jobs in chunks, ask for status, cancel, and pull results with
// long-polling FETCHes; docs/protocol.md describes the protocol. The server decodes,
// asks its JobService, and replies; it never drops a message silently:
//  - ROUTER_MANDATORY is on, so a reply to a producer that has gone (or whose queue
//    is full) fails at once and is counted as unroutable instead of blocking; the
//    producer's retry gets a fresh answer (submission is idempotent).
//  - ZMQ_MAXMSGSIZE bounds every frame (a SUBMIT chunk travels in one frame, so it
//    bounds a chunk); libzmq disconnects a peer that sends more.
//  - high-water marks bound what waits in the socket; the service's queue limit
//    answers BUSY, so a flood costs bounded memory and loses nothing.
// One thread owns the socket. Destroy the server before its zmq::context_t.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include <zmq.hpp>

#include "common/status.h"
#include "coordinator/producer/job_service.h"
#include "coordinator/producer/producer_message.h"

namespace conveyor {

struct ProducerServerOptions {
  std::string endpoint = "tcp://0.0.0.0:5555";              // "tcp://127.0.0.1:*" picks a free port
  std::int64_t max_message_bytes = std::int64_t{64} << 20;  // ZMQ_MAXMSGSIZE, per frame
  int send_hwm = 1000;                                      // replies queued per producer
  int receive_hwm = 1000;                                   // requests queued per producer
  // Called on the ROUTER before bind: CurveZMQ server keys, a ZAP domain, ...
  std::function<void(zmq::socket_t&)> configure_socket;
  // Fault injection: the first N ACK or DUPLICATE replies are not sent although the
  // chunk was accepted, as if the network had lost them.
  std::uint32_t drop_acks = 0;
  std::size_t max_parked_fetches = 1024;    // long-polls waiting at once; more get BUSY
  std::uint32_t max_wait_ms = 60'000;       // a FETCH's wait_ms is capped at this
  std::size_t max_fetch_records = 10'000;   // a FETCH's max_lines is capped at this
  std::uint32_t busy_retry_after_ms = 200;  // the hint when the server itself is full
};

struct ProducerServerCounters {
  std::uint64_t messages = 0;      // requests received, malformed ones included
  std::uint64_t acks = 0;          // ACK and DUPLICATE replies (sent or dropped)
  std::uint64_t duplicates = 0;    // DUPLICATE replies
  std::uint64_t busy = 0;          // BUSY replies
  std::uint64_t errors = 0;        // ERROR replies
  std::uint64_t unroutable = 0;    // replies whose producer was gone or full
  std::uint64_t dropped_acks = 0;  // ACKs withheld by drop_acks
  std::uint64_t parked = 0;        // FETCHes waiting now
};

class ProducerServer {
 public:
  ProducerServer(zmq::context_t& context, JobService& service, ProducerServerOptions options);
  ~ProducerServer();
  ProducerServer(const ProducerServer&) = delete;
  ProducerServer& operator=(const ProducerServer&) = delete;

  // Binds and starts the thread. kUnavailable when the address cannot be bound (in
  // use, not local), kInvalidArgument for an endpoint libzmq does not accept.
  Status start();
  // Stops taking requests, joins the thread and closes the socket. Parked FETCHes
  // get no reply (their producers retry elsewhere or later). Idempotent.
  void stop();

  // The bound endpoint, with a wildcard port resolved ("tcp://127.0.0.1:41234").
  const std::string& endpoint() const { return bound_endpoint_; }

  // New results exist for `job_id`: parked FETCHes for it are answered. Thread-safe;
  // cheap when nobody waits.
  void notify(const std::string& job_id);

  ProducerServerCounters counters() const;

 private:
  struct ParkedFetch {
    std::string identity;
    std::uint64_t request_id = 0;
    std::string job_id;
    std::uint64_t offset = 0;
    std::size_t max_records = 0;
    std::chrono::steady_clock::time_point deadline;
  };

  void run();
  void receive_pending();
  void handle(const std::string& identity, std::span<const std::string_view> frames);
  void handle_submit(const std::string& identity, const ProducerRequest& request);
  void handle_fetch(const std::string& identity, const ProducerRequest& request);
  ProducerReply answer(const ProducerRequest& request);
  ProducerReply results_reply(std::uint64_t request_id, const std::string& job_id,
                              FetchReply fetched);
  void wake_notified();
  void expire_parked();
  int poll_timeout_ms() const;
  void reply(const std::string& identity, const ProducerReply& reply);
  void send(const std::string& identity, const Frames& frames);
  void count(const ProducerReply& reply);

  zmq::context_t& context_;
  JobService& service_;
  const ProducerServerOptions options_;
  zmq::socket_t router_;
  zmq::socket_t wake_receiver_;
  std::string bound_endpoint_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};

  std::mutex wake_mutex_;  // guards wake_sender_, notified_, wake_pending_
  zmq::socket_t wake_sender_;
  std::unordered_set<std::string> notified_;
  bool wake_pending_ = false;

  std::vector<ParkedFetch> parked_;  // server thread only
  std::uint32_t acks_to_drop_ = 0;   // server thread only

  std::atomic<std::uint64_t> messages_{0}, acks_{0}, duplicates_{0}, busy_{0}, errors_{0},
      unroutable_{0}, dropped_acks_{0}, parked_count_{0};
};

}  // namespace conveyor
