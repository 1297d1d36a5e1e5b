// The sending end of a UCX activation link: stage k connects to the receiver of stage
// k + 1 and sends each step's hidden states as a header and a payload tag message
// (activation_header.h). The payload goes straight from the vector's memory; send()
// returns once that memory may be reused.
//
// One thread sends at a time (send() holds a lock while it drives the worker);
// close() may come from any thread and cancels a send in progress.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "common/status.h"
#include "worker/activation_channel.h"

namespace conveyor {

class UcxActivationSender final : public ActivationChannel {
 public:
  // Connects to a receiver's address ("host:port") and waits until the connection is
  // up: kUnavailable when refused or not up within `timeout`, kInvalidArgument for a
  // bad address, kUnsupported when built without UCX.
  static Expected<std::unique_ptr<UcxActivationSender>> connect(const std::string& address,
                                                                std::chrono::milliseconds timeout);

  // close()s.
  ~UcxActivationSender() override;
  UcxActivationSender(const UcxActivationSender&) = delete;
  UcxActivationSender& operator=(const UcxActivationSender&) = delete;

  // Stamped on every message sent from now on; the receiver reports it as
  // last_epoch(). A re-planned pipeline bumps it so stale messages are recognisable.
  void set_epoch(std::uint64_t epoch);
  // UCX version, UCX_TLS, CUDA-memory support and the connection's transports.
  std::string describe() const;

  ActivationChannelCapabilities capabilities() const override;
  // Blocks until the payload's memory may be reused. kUnavailable when the receiver
  // is gone, kCancelled after (or during) close().
  Status send(Activations activations) override;
  // kUnsupported: this end only sends.
  Expected<Activations> receive() override;
  // Says goodbye (so the receiver does not report a failure) and disconnects.
  void close() override;

  class Impl;

 private:
  explicit UcxActivationSender(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace conveyor
