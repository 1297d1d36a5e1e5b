// The header that precedes each activation message between pipeline stages, and the
// 64-bit tags that carry it. Independent of any transport library so that its checks
// are tested on their own and a hostile header can be crafted by tests.
//
// A message is two tag messages from one sender: a header (fixed 32 bytes, below)
// tagged kHeader|sender, then the payload (count f32 values) tagged kPayload|sender.
// The sender id in the low 32 bits keeps the payloads of two connected senders from
// being mistaken for each other; the receiver matches a payload by its exact tag.
// A sender that closes on purpose sends an empty kGoodbye|sender message and waits
// for the receiver's empty kGoodbyeAck|sender before disconnecting, so its
// disconnect is never mistaken for a failure. Goodbyes have their own kind so the
// receiver can take them while messages still wait for room in its inbox.
//
// Header layout, little-endian:
//   u32 magic "CVAC" | u16 version | u16 flags | u64 epoch | u64 step | u64 count
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "common/status.h"

namespace conveyor {

inline constexpr std::uint32_t kActivationMagic = 0x43415643;  // "CVAC" on the wire
inline constexpr std::uint16_t kActivationVersion = 1;
inline constexpr std::size_t kActivationHeaderBytes = 32;

struct ActivationHeader {
  std::uint16_t version = kActivationVersion;
  std::uint16_t flags = 0;  // none defined yet: must be 0
  std::uint64_t epoch = 0;  // which pipeline plan produced the message
  std::uint64_t step = 0;
  std::uint64_t count = 0;  // f32 values in the payload
};

std::array<std::uint8_t, kActivationHeaderBytes> encode_activation_header(
    const ActivationHeader& header);

// kMalformed when `bytes` is not a header at all (size, magic): nothing of it can be
// trusted, not even that a payload follows.
Expected<ActivationHeader> parse_activation_header(std::span<const std::uint8_t> bytes);

// Checks a parsed header against what this receiver accepts: kUnsupported for another
// version, kMalformed for unknown flags, kOutOfRange when
// the payload would exceed `max_payload_bytes` (checked before anything is allocated).
Status check_activation_header(const ActivationHeader& header, std::size_t max_payload_bytes);

enum class ActivationTagKind : std::uint8_t {
  kHeader = 0xA1,
  kPayload = 0xA2,
  kGoodbye = 0xA3,
  kGoodbyeAck = 0xA4,
};

// The tag of a message of `kind` from `sender`.
constexpr std::uint64_t activation_tag(ActivationTagKind kind, std::uint32_t sender) {
  return (std::uint64_t{static_cast<std::uint8_t>(kind)} << 56) | sender;
}
// Selects the kind bits of a tag (for probing "any header").
inline constexpr std::uint64_t kActivationKindMask = std::uint64_t{0xFF} << 56;
// Selects kind and sender (for matching one sender's payload).
inline constexpr std::uint64_t kActivationExactMask = ~std::uint64_t{0};

constexpr std::uint32_t activation_tag_sender(std::uint64_t tag) {
  return static_cast<std::uint32_t>(tag & 0xFFFFFFFFu);
}

}  // namespace conveyor
