// The NCCL activation transport: two GPU stages that share a 2-rank communicator.
// Rank 0 sends, rank 1 receives. The unique id that joins them is made by one side
// (new_unique_id) and passed to the other out of band (the coordinator), as bytes.
//
// A message is two NCCL transfers on the channel's stream: a header of three u64
// (epoch, step, count), then `count` f32 values. The host vector is staged through a
// device buffer allocated once and grown when a larger message comes.
//
// Built only with CONVEYOR_WITH_NCCL.
#pragma once
#ifdef CONVEYOR_WITH_NCCL

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "common/status.h"
#include "worker/activation_channel.h"

namespace conveyor {

class NcclActivationChannel final : public ActivationChannel {
 public:
  enum Rank : int { kSender = 0, kReceiver = 1 };

  // A fresh ncclUniqueId as bytes (NCCL_UNIQUE_ID_BYTES of them).
  static Expected<std::vector<std::uint8_t>> new_unique_id();

  // Joins the communicator named by `unique_id` as `rank` on CUDA device `device`.
  // Blocks until the other rank joins too (NCCL's rendezvous), so the two sides call
  // it concurrently. kInvalidArgument for an id of the wrong size or a bad rank;
  // kUnavailable when NCCL or CUDA refuse.
  static Expected<std::unique_ptr<NcclActivationChannel>> create(
      std::span<const std::uint8_t> unique_id, int rank, int device,
      std::size_t max_message_bytes = std::size_t{1} << 30);

  ~NcclActivationChannel() override;
  NcclActivationChannel(const NcclActivationChannel&) = delete;
  NcclActivationChannel& operator=(const NcclActivationChannel&) = delete;

  ActivationChannelCapabilities capabilities() const override { return {"nccl", true, false}; }
  // Rank 0 only (kUnsupported otherwise). Blocks until the host vector may be reused;
  // kUnavailable when NCCL reports an error (a peer gone), kCancelled after close().
  Status send(Activations activations) override;
  // Rank 1 only. kOutOfRange for a header above max_message_bytes (the channel is then
  // unusable: the peer's payload cannot be skipped), kCancelled after close().
  Expected<Activations> receive() override;
  // Aborts the communicator: a blocked send() or receive() returns kCancelled.
  void close() override;

  void set_epoch(std::uint64_t epoch) { epoch_.store(epoch); }
  std::uint64_t last_epoch() const { return last_epoch_.load(); }

  class Impl;

 private:
  explicit NcclActivationChannel(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  std::atomic<std::uint64_t> epoch_{0};
  std::atomic<std::uint64_t> last_epoch_{0};
};

}  // namespace conveyor

#endif  // CONVEYOR_WITH_NCCL
