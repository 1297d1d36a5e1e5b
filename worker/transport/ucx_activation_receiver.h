// The receiving end of a UCX activation link: pipeline stage k + 1 listens, and the
// coordinator hands address() to stage k, whose UcxActivationSender connects.
//
// A dedicated thread drives the receiver's UCP worker: it accepts connections at any
// time (a re-planned pipeline reconnects with a new sender), takes messages off the
// wire into a small inbox while the stage computes, and leaves further messages with
// their senders once the inbox is full (back-pressure).
//
// Peer failure: receive() returns items in arrival order, and a sender whose
// connection ends without its goodbye (UcxActivationSender::close sends one) is one
// item of its own: kUnavailable, after every message that sender delivered. The
// receiver stays usable: the next receive() waits for more, from a new sender too.
// A message refused by its header (kMalformed, kUnsupported, or kOutOfRange above
// max_message_bytes, checked before any allocation) is likewise one error item.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "common/status.h"
#include "worker/activation_channel.h"

namespace conveyor {

struct UcxReceiverOptions {
  // The largest payload accepted, in bytes; larger messages are refused unread.
  std::size_t max_message_bytes = std::size_t{1} << 30;
  // Messages taken in ahead of receive().
  std::size_t inbox_depth = 4;
};

class UcxActivationReceiver final : public ActivationChannel {
 public:
  // Listens on host:port (port 0: an ephemeral port). `host` is also what address()
  // reports, so give the address upstream stages reach (not 0.0.0.0).
  // kUnsupported when built without UCX; kUnavailable when the port cannot be bound.
  static Expected<std::unique_ptr<UcxActivationReceiver>> listen(const std::string& host,
                                                                 std::uint16_t port,
                                                                 UcxReceiverOptions options = {});

  ~UcxActivationReceiver() override;
  UcxActivationReceiver(const UcxActivationReceiver&) = delete;
  UcxActivationReceiver& operator=(const UcxActivationReceiver&) = delete;

  // "host:port" as bound, for UcxActivationSender::connect.
  std::string address() const;
  // UCX version, UCX_TLS, CUDA-memory support, and the transports of the latest
  // sender's connection once it has sent something.
  std::string describe() const;

  ActivationChannelCapabilities capabilities() const override;
  // kUnsupported: this end only receives.
  Status send(Activations activations) override;
  // The next item (see above); kCancelled once closed and drained.
  Expected<Activations> receive() override;
  // As receive(), but kUnavailable when nothing arrives within `timeout`.
  Expected<Activations> receive_for(std::chrono::milliseconds timeout);
  // The epoch its sender had set for the activations the last receive() returned.
  std::uint64_t last_epoch() const;
  // Senders connected now.
  std::size_t connected_senders() const;
  // Stops listening, disconnects every sender and wakes a blocked receive().
  void close() override;

  class Impl;

 private:
  explicit UcxActivationReceiver(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace conveyor
