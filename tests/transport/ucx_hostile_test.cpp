// Messages no UcxActivationSender would send, crafted with the raw UCX wrappers: the
// receiver refuses each as one error item, allocates nothing for a forged size, and
// keeps working.
#ifdef CONVEYOR_WITH_UCX
#include <doctest/doctest.h>

#include <chrono>
#include <vector>

#include "tests/transport/activation_pattern.h"
#include "worker/transport/activation_header.h"
#include "worker/transport/socket_address.h"
#include "worker/transport/ucx_channel.h"
#include "worker/transport/ucx_endpoint.h"
#include "worker/transport/ucx_worker.h"

namespace conveyor {
namespace {

using namespace std::chrono_literals;
using testing::pattern_activations;
using testing::pattern_mismatch;

constexpr auto kWait = 20s;

// A peer speaking raw tag messages with a chosen sender id.
class RawSender {
 public:
  RawSender(const std::string& address, std::uint32_t id) : id_(id) {
    auto worker = UcxWorker::create(id);
    REQUIRE_MESSAGE(worker.ok(), worker.status().to_string());
    worker_ = std::move(*worker);
    auto target = parse_address(address);
    REQUIRE(target.ok());
    auto endpoint = UcxEndpoint::connect(*worker_, *target, 10s);
    REQUIRE_MESSAGE(endpoint.ok(), endpoint.status().to_string());
    endpoint_ = std::move(*endpoint);
  }

  void send(ActivationTagKind kind, const void* data, std::size_t bytes) {
    Status s = endpoint_->send_tag(activation_tag(kind, id_), data, bytes, nullptr,
                                   UcxWorker::Clock::now() + kWait);
    REQUIRE_MESSAGE(s.ok(), s.to_string());
  }
  void send_header(const ActivationHeader& header) {
    const auto bytes = encode_activation_header(header);
    send(ActivationTagKind::kHeader, bytes.data(), bytes.size());
  }
  void send_floats(std::size_t count) {
    const std::vector<float> values(count, 1.0f);
    send(ActivationTagKind::kPayload, values.data(), values.size() * sizeof(float));
  }
  // Disconnects without a goodbye, as a crashed peer would (after its messages left).
  void drop() { endpoint_->close(true, kWait); }

 private:
  std::uint32_t id_;
  std::unique_ptr<UcxWorker> worker_;
  std::unique_ptr<UcxEndpoint> endpoint_;
};

std::unique_ptr<UcxActivationReceiver> listen_loopback(UcxReceiverOptions options = {}) {
  auto receiver = UcxActivationReceiver::listen("127.0.0.1", 0, options);
  REQUIRE_MESSAGE(receiver.ok(), receiver.status().to_string());
  return std::move(*receiver);
}

ErrorCode next_code(UcxActivationReceiver& receiver) {
  return receiver.receive_for(kWait).status().code();
}

TEST_CASE("ucx hostile: a forged huge element count is refused without allocating") {
  auto receiver = listen_loopback();
  RawSender raw(receiver->address(), 11);
  ActivationHeader header;
  header.count = std::uint64_t{1} << 40;  // 4 TiB of floats
  raw.send_header(header);
  header.count = ~std::uint64_t{0};
  raw.send_header(header);
  CHECK(next_code(*receiver) == ErrorCode::kOutOfRange);
  CHECK(next_code(*receiver) == ErrorCode::kOutOfRange);
  // Still working, for an honest sender.
  auto sender = UcxActivationSender::connect(receiver->address(), 10s);
  REQUIRE(sender.ok());
  REQUIRE((*sender)->send(pattern_activations(5, 1000)).ok());
  auto got = receiver->receive_for(kWait);
  REQUIRE_MESSAGE(got.ok(), got.status().to_string());
  CHECK(pattern_mismatch(*got, 5, 1000) == "");
}

TEST_CASE("ucx hostile: malformed headers and payloads that disagree with them") {
  auto receiver = listen_loopback();
  RawSender raw(receiver->address(), 12);
  const std::vector<std::uint8_t> garbage(kActivationHeaderBytes, 0xFF);
  raw.send(ActivationTagKind::kHeader, garbage.data(), garbage.size());
  CHECK(next_code(*receiver) == ErrorCode::kMalformed);
  const std::vector<std::uint8_t> too_long(100, 0);
  raw.send(ActivationTagKind::kHeader, too_long.data(), too_long.size());
  CHECK(next_code(*receiver) == ErrorCode::kMalformed);
  ActivationHeader header;
  header.count = 4;
  raw.send_header(header);
  raw.send_floats(8);  // longer than announced
  CHECK(next_code(*receiver) == ErrorCode::kMalformed);
  header.count = 8;
  raw.send_header(header);
  raw.send_floats(4);  // shorter than announced
  CHECK(next_code(*receiver) == ErrorCode::kMalformed);
  // A well-formed message from the same peer still goes through.
  header.step = 77;
  header.count = 3;
  raw.send_header(header);
  raw.send_floats(3);
  auto got = receiver->receive_for(kWait);
  REQUIRE_MESSAGE(got.ok(), got.status().to_string());
  CHECK(got->step == 77);
  CHECK(got->hidden == std::vector<float>{1.0f, 1.0f, 1.0f});
}

TEST_CASE("ucx hostile: a refused header's payload is drained, not left to block") {
  auto receiver = listen_loopback();
  RawSender raw(receiver->address(), 13);
  ActivationHeader header;
  header.version = kActivationVersion + 1;
  header.count = 16;
  raw.send_header(header);
  raw.send_floats(16);
  CHECK(next_code(*receiver) == ErrorCode::kUnsupported);
  header.version = kActivationVersion;
  header.step = 8;
  header.count = 2;
  raw.send_header(header);
  raw.send_floats(2);
  auto got = receiver->receive_for(kWait);
  REQUIRE_MESSAGE(got.ok(), got.status().to_string());
  CHECK(got->step == 8);
  CHECK(got->hidden.size() == 2);
}

TEST_CASE("ucx: a message above max_message_bytes is refused and the sender goes on") {
  UcxReceiverOptions options;
  options.max_message_bytes = std::size_t{1} << 20;
  auto receiver = listen_loopback(options);
  auto sender = UcxActivationSender::connect(receiver->address(), 10s);
  REQUIRE(sender.ok());
  // Twice the limit: the receiver drains it, so the send completes.
  CHECK((*sender)->send(pattern_activations(0, std::size_t{1} << 19)).ok());
  CHECK((*sender)->send(pattern_activations(1, 1000)).ok());
  CHECK(next_code(*receiver) == ErrorCode::kOutOfRange);
  auto got = receiver->receive_for(kWait);
  REQUIRE_MESSAGE(got.ok(), got.status().to_string());
  CHECK(pattern_mismatch(*got, 1, 1000) == "");
}

TEST_CASE("ucx: a sender lost without closing is reported once, after its messages") {
  auto receiver = listen_loopback();
  {
    RawSender raw(receiver->address(), 14);
    ActivationHeader header;
    header.step = 1;
    header.count = 5;
    raw.send_header(header);
    raw.send_floats(5);
    raw.drop();
  }
  auto got = receiver->receive_for(kWait);
  REQUIRE_MESSAGE(got.ok(), got.status().to_string());
  CHECK(got->step == 1);
  auto lost = receiver->receive_for(kWait);
  CHECK(lost.status().code() == ErrorCode::kUnavailable);
  CHECK(lost.status().message().find("lost") != std::string::npos);
  CHECK(receiver->connected_senders() == 0);
  // And a replacement is accepted.
  auto sender = UcxActivationSender::connect(receiver->address(), 10s);
  REQUIRE(sender.ok());
  REQUIRE((*sender)->send(pattern_activations(2, 10)).ok());
  auto next = receiver->receive_for(kWait);
  REQUIRE_MESSAGE(next.ok(), next.status().to_string());
  CHECK(pattern_mismatch(*next, 2, 10) == "");
}

}  // namespace
}  // namespace conveyor
#endif  // CONVEYOR_WITH_UCX
