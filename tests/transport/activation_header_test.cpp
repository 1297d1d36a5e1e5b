#include <doctest/doctest.h>

#include <limits>
#include <vector>

#include "worker/transport/activation_header.h"
#include "worker/transport/socket_address.h"

namespace conveyor {
namespace {

TEST_CASE("activation header: round trip") {
  ActivationHeader header;
  header.epoch = 3;
  header.step = 0x0123456789ABCDEFull;
  header.count = 4096;
  const auto bytes = encode_activation_header(header);
  CHECK(bytes[0] == 'C');
  CHECK(bytes[3] == 'C');
  auto parsed = parse_activation_header(bytes);
  REQUIRE(parsed.ok());
  CHECK(parsed->version == kActivationVersion);
  CHECK(parsed->flags == 0);
  CHECK(parsed->epoch == 3);
  CHECK(parsed->step == header.step);
  CHECK(parsed->count == 4096);
  CHECK(check_activation_header(*parsed, 4096 * sizeof(float)).ok());
}

TEST_CASE("activation header: not a header at all") {
  std::vector<std::uint8_t> short_bytes(kActivationHeaderBytes - 1, 0);
  CHECK(parse_activation_header(short_bytes).status().code() == ErrorCode::kMalformed);
  std::vector<std::uint8_t> long_bytes(kActivationHeaderBytes + 1, 0);
  CHECK(parse_activation_header(long_bytes).status().code() == ErrorCode::kMalformed);
  auto bytes = encode_activation_header({});
  bytes[1] ^= 0xFF;
  CHECK(parse_activation_header(bytes).status().code() == ErrorCode::kMalformed);
}

TEST_CASE("activation header: refused by its fields, before any allocation") {
  ActivationHeader header;
  header.version = kActivationVersion + 1;
  CHECK(check_activation_header(header, 1024).code() == ErrorCode::kUnsupported);
  header = {};
  header.flags = 0x8000;
  CHECK(check_activation_header(header, 1024).code() == ErrorCode::kMalformed);
  header = {};
  header.count = 257;  // 1028 bytes
  CHECK(check_activation_header(header, 1024).code() == ErrorCode::kOutOfRange);
  header.count = 256;
  CHECK(check_activation_header(header, 1024).ok());
  // Counts whose byte size wraps around 2^64 are still too large.
  header.count = std::numeric_limits<std::uint64_t>::max() / 4 + 1;
  CHECK(check_activation_header(header, std::numeric_limits<std::size_t>::max()).code() ==
        ErrorCode::kOutOfRange);
  header.count = std::numeric_limits<std::uint64_t>::max();
  CHECK(check_activation_header(header, std::size_t{1} << 30).code() == ErrorCode::kOutOfRange);
}

TEST_CASE("activation tags: kind and sender") {
  const auto tag = activation_tag(ActivationTagKind::kPayload, 0xDEADBEEF);
  CHECK(activation_tag_sender(tag) == 0xDEADBEEF);
  CHECK((tag & kActivationKindMask) ==
        (activation_tag(ActivationTagKind::kPayload, 0) & kActivationKindMask));
  CHECK((tag & kActivationKindMask) !=
        (activation_tag(ActivationTagKind::kHeader, 0xDEADBEEF) & kActivationKindMask));
}

TEST_CASE("socket address: host:port forms") {
  auto v4 = parse_address("127.0.0.1:5000");
  REQUIRE(v4.ok());
  CHECK(v4->host == "127.0.0.1");
  CHECK(v4->port == 5000);
  CHECK(v4->storage.ss_family == AF_INET);
  auto v6 = parse_address("[::1]:6000");
  REQUIRE(v6.ok());
  CHECK(v6->host == "::1");
  CHECK(v6->storage.ss_family == AF_INET6);
  CHECK(format_address("::1", 6000) == "[::1]:6000");
  CHECK(format_address("10.0.0.1", 1) == "10.0.0.1:1");
  CHECK(parse_address("localhost:7").ok());
  for (const char* bad : {"", "5000", "host:", ":5000", "h:0", "h:65536", "h:12x", "::1:5"}) {
    CHECK_MESSAGE(!parse_address(bad).ok(), bad);
  }
  CHECK(resolve_address("", 1).status().code() == ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace conveyor
