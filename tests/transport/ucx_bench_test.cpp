// Throughput of the UCX transport over loopback, skipped by default. Run with
//   test_transport --no-skip=true --test-case="bench: *"
#ifdef CONVEYOR_WITH_UCX
#include <doctest/doctest.h>

#include <chrono>
#include <future>

#include "worker/transport/ucx_channel.h"

namespace conveyor {
namespace {

using namespace std::chrono_literals;

TEST_CASE("bench: ucx loopback throughput, 64 MiB payloads" * doctest::skip()) {
  constexpr std::size_t kFloats = std::size_t{16} << 20;  // 64 MiB
  constexpr int kWarmup = 2;
  constexpr int kMessages = 32;
  auto receiver = UcxActivationReceiver::listen("127.0.0.1", 0);
  REQUIRE(receiver.ok());
  auto sender = UcxActivationSender::connect((*receiver)->address(), 10s);
  REQUIRE(sender.ok());
  Activations payload;
  payload.hidden.assign(kFloats, 0.5f);
  auto sending = std::async(std::launch::async, [&] {
    for (int i = 0; i < kWarmup + kMessages; ++i) {
      payload.step = static_cast<std::uint64_t>(i);
      if (Status s = (*sender)->send(payload); !s.ok()) return s;
    }
    return Status{};
  });
  for (int i = 0; i < kWarmup; ++i)
    REQUIRE((*receiver)->receive_for(20s).ok());
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kMessages; ++i) {
    auto got = (*receiver)->receive_for(20s);
    REQUIRE(got.ok());
    REQUIRE(got->hidden.size() == kFloats);
  }
  const std::chrono::duration<double> seconds = std::chrono::steady_clock::now() - start;
  REQUIRE(sending.get().ok());
  const double bytes = static_cast<double>(kMessages) * kFloats * sizeof(float);
  MESSAGE("ucx loopback: " << kMessages << " x 64 MiB in " << seconds.count()
                           << " s = " << bytes / seconds.count() / 1e9 << " GB/s ("
                           << (*sender)->describe() << ")");
}

}  // namespace
}  // namespace conveyor
#endif  // CONVEYOR_WITH_UCX
