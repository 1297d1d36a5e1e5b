// The binary form of ControlMessage: magic "CVCT" (u32), version (u16), the variant
// index (u8), then the fields in order, little-endian, strings and byte arrays
// length-prefixed. The decoder checks every length and value: garbage is
// Error(kMalformed) (kUnsupported for another version), never a crash, and never an
// allocation larger than the message itself.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "common/status.h"
#include "worker/node/control_message.h"

namespace conveyor {

inline constexpr std::uint32_t kControlMagic = 0x54435643;  // "CVCT"
inline constexpr std::uint16_t kControlVersion = 2;         // 2: swap tiers in assignments
inline constexpr std::size_t kMaxControlString = 4096;
inline constexpr std::size_t kMaxControlPayload = 256u << 20;  // an encoded plan or output

std::vector<std::uint8_t> encode_control(const ControlMessage& message);
Expected<ControlMessage> decode_control(std::span<const std::uint8_t> bytes);

// "register", "step", ...: for logs and errors.
const char* control_message_name(const ControlMessage& message);

}  // namespace conveyor
