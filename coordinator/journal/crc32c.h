// CRC-32C (Castagnoli), the checksum of every journal record. Chosen over CRC-32 for
// its better error detection on short messages and because storage formats that
// people already inspect (ext4, iSCSI, LevelDB) use it, so tools exist to check it.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace conveyor {

// The CRC-32C of `bytes`; crc32c("123456789") == 0xE3069283.
std::uint32_t crc32c(std::span<const std::uint8_t> bytes);
std::uint32_t crc32c(std::string_view text);

// Continues a CRC over more bytes: crc32c_extend(crc32c(a), b) == crc32c(a + b).
std::uint32_t crc32c_extend(std::uint32_t crc, std::span<const std::uint8_t> bytes);

}  // namespace conveyor
