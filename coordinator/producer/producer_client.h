// ProducerClient: the producer side of the protocol (docs/protocol.md) over a DEALER
// socket, used by `conveyor submit`. Every call is a request with a timeout; when no
// reply comes, the socket is closed and reopened and the request sent again (the
// ZeroMQ Guide's "Lazy Pirate"), after an exponential back-off with jitter, so a lost
// reply never wedges the client. That makes delivery at-least-once; the coordinator
// deduplicates (a resent chunk is answered DUPLICATE). BUSY replies are retried after
// the coordinator's hint or the back-off, whichever is longer, for up to busy_limit.
//
// One thread owns a client. Destroy it before its zmq::context_t.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "common/status.h"
#include "coordinator/producer/job_service.h"
#include "coordinator/producer/producer_message.h"

namespace conveyor {

struct ProducerClientOptions {
  std::string endpoint;                     // "tcp://coordinator:5555"
  std::chrono::milliseconds timeout{5000};  // per attempt (a FETCH adds its wait)
  int attempts = 5;                         // sends per request while no reply comes
  std::chrono::milliseconds backoff_initial{100};
  std::chrono::milliseconds backoff_max{5000};
  std::chrono::milliseconds busy_limit{std::chrono::minutes(10)};  // BUSY retried this long
  // Called on every new DEALER before connect: CurveZMQ client keys, ...
  std::function<void(zmq::socket_t&)> configure_socket;
};

struct SubmitResult {
  bool duplicate = false;  // the coordinator had the chunk already (a retry or a rerun)
};

struct ProducerClientStats {
  std::uint64_t requests = 0;
  std::uint64_t timeouts = 0;  // attempts without a reply (each reopens the socket)
  std::uint64_t busy = 0;      // BUSY replies waited out
  std::uint64_t stale = 0;     // replies to an earlier request, discarded
};

class ProducerClient {
 public:
  ProducerClient(zmq::context_t& context, ProducerClientOptions options);
  ProducerClient(const ProducerClient&) = delete;
  ProducerClient& operator=(const ProducerClient&) = delete;

  // ACK or DUPLICATE: the chunk is durable on the coordinator. kUnavailable when no
  // reply came after every attempt; kResourceExhausted when BUSY outlasted
  // busy_limit; the coordinator's ERROR otherwise (kInvalidArgument for a chunk it
  // refuses, kMalformed for one it cannot read).
  Expected<SubmitResult> submit_chunk(const std::string& job_id, std::uint32_t chunk, bool final,
                                      const std::vector<std::string>& lines);
  // found == false for a job the coordinator does not know.
  Expected<JobStatusReply> status(const std::string& job_id);
  Status cancel(const std::string& job_id);
  Status release(const std::string& job_id);
  // Result records from `offset`; the coordinator holds the request up to wait_ms
  // while there is nothing new. found == false for an unknown job.
  Expected<FetchReply> fetch(const std::string& job_id, std::uint64_t offset,
                             std::uint32_t max_lines, std::uint32_t wait_ms);

  const ProducerClientStats& stats() const { return stats_; }
  const std::string& endpoint() const { return options_.endpoint; }

 private:
  // Sends `request` until a reply other than BUSY comes, within the limits above.
  Expected<ProducerReply> call(ProducerRequest request, std::chrono::milliseconds extra_wait);
  // One attempt: nullopt when no reply came in time.
  std::optional<Expected<ProducerReply>> exchange(const Frames& frames, std::uint64_t request_id,
                                                  std::chrono::milliseconds timeout);
  Status open();
  void sleep_backoff(std::chrono::milliseconds& backoff, std::chrono::milliseconds at_least);
  Status unexpected(const ProducerReply& reply, const char* verb) const;

  zmq::context_t& context_;
  const ProducerClientOptions options_;
  zmq::socket_t socket_;
  std::uint64_t next_request_id_;
  std::mt19937_64 random_;
  ProducerClientStats stats_;
};

}  // namespace conveyor
