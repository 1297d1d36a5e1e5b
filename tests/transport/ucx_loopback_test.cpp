#ifdef CONVEYOR_WITH_UCX
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <thread>
#include <vector>

#include "tests/transport/activation_pattern.h"
#include "worker/transport/ucx_channel.h"

namespace conveyor {
namespace {

using namespace std::chrono_literals;
using testing::pattern_activations;
using testing::pattern_mismatch;

constexpr auto kWait = 20s;  // a bound for every blocking wait: a failure, never a hang

std::unique_ptr<UcxActivationReceiver> listen_loopback(UcxReceiverOptions options = {}) {
  auto receiver = UcxActivationReceiver::listen("127.0.0.1", 0, options);
  REQUIRE_MESSAGE(receiver.ok(), receiver.status().to_string());
  return std::move(*receiver);
}

std::unique_ptr<UcxActivationSender> connect_to(const std::string& address) {
  auto sender = UcxActivationSender::connect(address, 10s);
  REQUIRE_MESSAGE(sender.ok(), sender.status().to_string());
  return std::move(*sender);
}

// 1 float up to 16 Mi floats: mostly small, every 25th from 128 Ki doubling to 16 Mi,
// and the last one 16 Mi.
std::size_t varied_count(std::size_t i, std::size_t n) {
  if (i + 1 == n) return std::size_t{1} << 24;
  if (i % 25 == 24) return std::size_t{1} << (17 + i / 25);
  return 1 + (i * 7919) % 4096;
}

TEST_CASE("ucx: 200 activations of varied sizes arrive in order with exact contents") {
  auto receiver = listen_loopback();
  CHECK(receiver->address().rfind("127.0.0.1:", 0) == 0);
  auto sender = connect_to(receiver->address());
  constexpr std::size_t kCount = 200;
  sender->set_epoch(7);
  auto sending = std::async(std::launch::async, [&] {
    for (std::size_t i = 0; i < kCount; ++i) {
      Status s = sender->send(pattern_activations(1000 + i, varied_count(i, kCount)));
      if (!s.ok()) return s;
    }
    return Status{};
  });
  for (std::size_t i = 0; i < kCount; ++i) {
    auto got = receiver->receive_for(kWait);
    REQUIRE_MESSAGE(got.ok(), got.status().to_string());
    REQUIRE_MESSAGE(pattern_mismatch(*got, 1000 + i, varied_count(i, kCount)) == "", "message ", i,
                    ": ", pattern_mismatch(*got, 1000 + i, varied_count(i, kCount)));
    CHECK(receiver->last_epoch() == 7);
  }
  REQUIRE(sending.wait_for(kWait) == std::future_status::ready);
  CHECK(sending.get().ok());
  MESSAGE("sender: " << sender->describe());
  MESSAGE("receiver: " << receiver->describe());
}

TEST_CASE("ucx: a new sender connects after the first closed (re-plan)") {
  auto receiver = listen_loopback();
  {
    auto first = connect_to(receiver->address());
    first->set_epoch(1);
    for (std::uint64_t step = 0; step < 3; ++step)
      REQUIRE(first->send(pattern_activations(step, 100)).ok());
    first->close();
    CHECK(first->send(pattern_activations(99, 1)).code() == ErrorCode::kCancelled);
  }
  auto second = connect_to(receiver->address());
  second->set_epoch(2);
  for (std::uint64_t step = 3; step < 6; ++step)
    REQUIRE(second->send(pattern_activations(step, 100)).ok());
  // The first sender said goodbye: its disconnect is no error, so six activations
  // arrive back to back.
  for (std::uint64_t step = 0; step < 6; ++step) {
    auto got = receiver->receive_for(kWait);
    REQUIRE_MESSAGE(got.ok(), got.status().to_string());
    CHECK(pattern_mismatch(*got, step, 100) == "");
    CHECK(receiver->last_epoch() == (step < 3 ? 1 : 2));
  }
  CHECK(receiver->connected_senders() == 1);
  auto nothing = receiver->receive_for(50ms);
  CHECK(nothing.status().code() == ErrorCode::kUnavailable);
}

TEST_CASE("ucx: close() wakes a blocked receive() with kCancelled") {
  auto receiver = listen_loopback();
  auto waiting =
      std::async(std::launch::async, [&] { return Status(receiver->receive().status()); });
  CHECK(waiting.wait_for(20ms) == std::future_status::timeout);
  receiver->close();
  REQUIRE(waiting.wait_for(kWait) == std::future_status::ready);
  CHECK(waiting.get().code() == ErrorCode::kCancelled);
  CHECK(receiver->receive().status().code() == ErrorCode::kCancelled);
}

TEST_CASE("ucx: receive_for times out with kUnavailable") {
  auto receiver = listen_loopback();
  CHECK(receiver->receive_for(10ms).status().code() == ErrorCode::kUnavailable);
}

TEST_CASE("ucx: connecting where nobody listens fails, not hangs") {
  // A bound socket that never listens: connections to its port are refused.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  socklen_t length = sizeof address;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0);
  const std::string target = "127.0.0.1:" + std::to_string(ntohs(address.sin_port));
  auto connecting = std::async(std::launch::async,
                               [&] { return UcxActivationSender::connect(target, 3s).status(); });
  REQUIRE(connecting.wait_for(kWait) == std::future_status::ready);
  const Status status = connecting.get();
  ::close(fd);
  CHECK(status.code() == ErrorCode::kUnavailable);
  CHECK(status.message().find(target) != std::string::npos);
}

TEST_CASE("ucx: bad addresses are refused") {
  CHECK(UcxActivationSender::connect("no-port", 1s).status().code() == ErrorCode::kInvalidArgument);
  CHECK(UcxActivationSender::connect("127.0.0.1:0", 1s).status().code() ==
        ErrorCode::kInvalidArgument);
  CHECK(UcxActivationSender::connect("::1:5000", 1s).status().code() ==
        ErrorCode::kInvalidArgument);
  CHECK(UcxActivationSender::connect("host.invalid:5000", 1s).status().code() ==
        ErrorCode::kNotFound);
  CHECK(!UcxActivationReceiver::listen("", 0).ok());
}

TEST_CASE("ucx: a port already taken cannot be listened on") {
  auto receiver = listen_loopback();
  const std::string address = receiver->address();
  const auto port = static_cast<std::uint16_t>(std::stoi(address.substr(address.rfind(':') + 1)));
  auto second = UcxActivationReceiver::listen("127.0.0.1", port);
  CHECK(second.status().code() == ErrorCode::kUnavailable);
}

TEST_CASE("ucx: sending after the receiver is gone fails instead of hanging") {
  auto receiver = listen_loopback();
  auto sender = connect_to(receiver->address());
  REQUIRE(sender->send(pattern_activations(0, 10)).ok());
  REQUIRE(receiver->receive_for(kWait).ok());
  receiver.reset();
  auto sending = std::async(std::launch::async, [&] {
    // The first sends may still leave before the disconnect is seen; a bounded
    // number of them must end in an error.
    for (int i = 0; i < 100; ++i) {
      Status s = sender->send(pattern_activations(1 + i, std::size_t{1} << 20));
      if (!s.ok()) return s;
    }
    return Status{};
  });
  REQUIRE(sending.wait_for(kWait) == std::future_status::ready);
  CHECK(sending.get().code() == ErrorCode::kUnavailable);
}

TEST_CASE("ucx: close() cancels a send that the receiver does not take") {
  UcxReceiverOptions options;
  options.inbox_depth = 1;
  auto receiver = listen_loopback(options);
  auto sender = connect_to(receiver->address());
  // The first fills the receiver's inbox; nobody receives, so the second (large
  // enough to need the receiver's cooperation) cannot complete.
  REQUIRE(sender->send(pattern_activations(0, 10)).ok());
  auto sending = std::async(std::launch::async, [&] {
    return sender->send(pattern_activations(1, std::size_t{1} << 22));
  });
  CHECK(sending.wait_for(50ms) == std::future_status::timeout);
  sender->close();
  REQUIRE(sending.wait_for(kWait) == std::future_status::ready);
  CHECK(sending.get().code() == ErrorCode::kCancelled);
  // The receiver still has the first, then learns the sender went away mid-message.
  auto first = receiver->receive_for(kWait);
  REQUIRE(first.ok());
  CHECK(first->step == 0);
  auto lost = receiver->receive_for(kWait);
  CHECK(lost.status().code() == ErrorCode::kUnavailable);
}

TEST_CASE("ucx: each end refuses the other direction and declares its capabilities") {
  auto receiver = listen_loopback();
  auto sender = connect_to(receiver->address());
  CHECK(receiver->send(pattern_activations(0, 1)).code() == ErrorCode::kUnsupported);
  CHECK(sender->receive().status().code() == ErrorCode::kUnsupported);
  const auto caps = sender->capabilities();
  CHECK(caps.transport == "ucx");
  CHECK_FALSE(caps.zero_copy);
  const bool cuda = sender->describe().find("CUDA memory: yes") != std::string::npos;
  CHECK(caps.device_memory == cuda);
  CHECK(receiver->capabilities().device_memory == cuda);
  CHECK(sender->describe().find("UCX_TLS=") != std::string::npos);
}

}  // namespace
}  // namespace conveyor
#endif  // CONVEYOR_WITH_UCX
