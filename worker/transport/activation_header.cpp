#include "worker/transport/activation_header.h"

#include <algorithm>
#include <string>

#include "common/wire/wire_buffer.h"

namespace conveyor {

std::array<std::uint8_t, kActivationHeaderBytes> encode_activation_header(
    const ActivationHeader& header) {
  WireWriter writer;
  writer.put<std::uint32_t>(kActivationMagic);
  writer.put<std::uint16_t>(header.version);
  writer.put<std::uint16_t>(header.flags);
  writer.put<std::uint64_t>(header.epoch);
  writer.put<std::uint64_t>(header.step);
  writer.put<std::uint64_t>(header.count);
  std::array<std::uint8_t, kActivationHeaderBytes> bytes{};
  std::copy(writer.bytes().begin(), writer.bytes().end(), bytes.begin());
  return bytes;
}

Expected<ActivationHeader> parse_activation_header(std::span<const std::uint8_t> bytes) {
  if (bytes.size() != kActivationHeaderBytes) {
    return Status(ErrorCode::kMalformed, "activation header of " + std::to_string(bytes.size()) +
                                             " bytes, expected " +
                                             std::to_string(kActivationHeaderBytes));
  }
  return to_expected([&] {
    WireReader reader(bytes);
    if (reader.get<std::uint32_t>("magic") != kActivationMagic) {
      fail(ErrorCode::kMalformed, "activation header: bad magic");
    }
    ActivationHeader header;
    header.version = reader.get<std::uint16_t>("version");
    header.flags = reader.get<std::uint16_t>("flags");
    header.epoch = reader.get<std::uint64_t>("epoch");
    header.step = reader.get<std::uint64_t>("step");
    header.count = reader.get<std::uint64_t>("count");
    reader.expect_end("activation header");
    return header;
  });
}

Status check_activation_header(const ActivationHeader& header, std::size_t max_payload_bytes) {
  if (header.version != kActivationVersion) {
    return Status(ErrorCode::kUnsupported,
                  "activation header version " + std::to_string(header.version) +
                      ", this build reads " + std::to_string(kActivationVersion));
  }
  if (header.flags != 0) return Status(ErrorCode::kMalformed, "activation header: unknown flags");
  // Division, not multiplication: a forged count near 2^64 must not wrap around.
  if (header.count > max_payload_bytes / sizeof(float)) {
    return Status(ErrorCode::kOutOfRange, "activation payload of " + std::to_string(header.count) +
                                              " floats exceeds the limit of " +
                                              std::to_string(max_payload_bytes) + " bytes");
  }
  return {};
}

}  // namespace conveyor
