// Needs two CUDA devices; skips (with a message) on machines with fewer.
#ifdef CONVEYOR_WITH_NCCL
#include <cuda_runtime.h>
#include <doctest/doctest.h>

#include <chrono>
#include <future>

#include "tests/transport/activation_pattern.h"
#include "worker/transport/nccl_channel.h"

namespace conveyor {
namespace {

using namespace std::chrono_literals;
using testing::pattern_activations;
using testing::pattern_mismatch;

int cuda_devices() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) return 0;  // no driver, no device
  return count;
}

TEST_CASE("nccl: a bad unique id or rank is refused before NCCL sees it") {
  const std::vector<std::uint8_t> short_id(3, 0);
  CHECK(NcclActivationChannel::create(short_id, 0, 0).status().code() ==
        ErrorCode::kInvalidArgument);
  const std::vector<std::uint8_t> id(128, 0);
  CHECK(NcclActivationChannel::create(id, 2, 0).status().code() == ErrorCode::kInvalidArgument);
}

TEST_CASE("nccl: activations between two GPUs arrive in order with exact contents") {
  if (cuda_devices() < 2) {
    MESSAGE("skipped: needs 2 CUDA devices, found " << cuda_devices());
    return;
  }
  auto id = NcclActivationChannel::new_unique_id();
  REQUIRE_MESSAGE(id.ok(), id.status().to_string());
  // Both ranks join concurrently: NCCL's initialisation is a rendezvous.
  auto receiving = std::async(std::launch::async, [&] {
    return NcclActivationChannel::create(*id, NcclActivationChannel::kReceiver, 1);
  });
  auto sender = NcclActivationChannel::create(*id, NcclActivationChannel::kSender, 0);
  REQUIRE(receiving.wait_for(60s) == std::future_status::ready);
  auto receiver = receiving.get();
  REQUIRE_MESSAGE(sender.ok(), sender.status().to_string());
  REQUIRE_MESSAGE(receiver.ok(), receiver.status().to_string());
  CHECK((*sender)->capabilities().transport == "nccl");
  CHECK((*sender)->capabilities().device_memory);
  CHECK((*sender)->receive().status().code() == ErrorCode::kUnsupported);

  const std::size_t counts[] = {1, 1000, 4096, std::size_t{1} << 20, 7, std::size_t{1} << 24};
  (*sender)->set_epoch(3);
  auto sending = std::async(std::launch::async, [&] {
    for (std::size_t i = 0; i < std::size(counts); ++i) {
      if (Status s = (*sender)->send(pattern_activations(i, counts[i])); !s.ok()) return s;
    }
    return Status{};
  });
  for (std::size_t i = 0; i < std::size(counts); ++i) {
    auto got = (*receiver)->receive();
    REQUIRE_MESSAGE(got.ok(), got.status().to_string());
    CHECK(pattern_mismatch(*got, i, counts[i]) == "");
    CHECK((*receiver)->last_epoch() == 3);
  }
  REQUIRE(sending.wait_for(60s) == std::future_status::ready);
  CHECK(sending.get().ok());

  // close() ends a receive that nothing will satisfy.
  auto waiting =
      std::async(std::launch::async, [&] { return Status((*receiver)->receive().status()); });
  CHECK(waiting.wait_for(20ms) == std::future_status::timeout);
  (*receiver)->close();
  REQUIRE(waiting.wait_for(60s) == std::future_status::ready);
  CHECK(waiting.get().code() == ErrorCode::kCancelled);
  (*sender)->close();
}

}  // namespace
}  // namespace conveyor
#endif  // CONVEYOR_WITH_NCCL
