// Byte sizes and counts as people type them in flags and config files: "64MiB", "1.5GiB",
// "8GB", "4k".
//
// Sizes: a bare letter is binary, as in llama.cpp, docker --memory and the JVM's -Xmx, because
// these sizes are memory budgets and "1G" of memory means 2^30 bytes to most users. An explicit
// "B" after the letter asks for the SI meaning, as disks and vLLM's docs use it:
//   k, K, KiB = 2^10    KB = 10^3
//   M, MiB    = 2^20    MB = 10^6
//   G, GiB    = 2^30    GB = 10^9
//   T, TiB    = 2^40    TB = 10^12
// Units are case-insensitive ("gib", "gb"); "B" alone or no unit means bytes. A fraction is
// allowed with a unit ("1.5GiB", up to 6 digits) and rounds down to whole bytes.
//
// Counts are decimal: 1k = 1000, 1M = 10^6, 1G = 10^9; "1.5k" = 1500, but a fraction that
// leaves a non-whole count ("1.0005k") is an error.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace conveyor {

// kInvalidArgument for text that is not a size, kOutOfRange when it exceeds 2^64 - 1.
Expected<std::uint64_t> parse_size(std::string_view text);

// A non-negative count; kInvalidArgument for anything else, kOutOfRange past 2^63 - 1.
Expected<std::int64_t> parse_count(std::string_view text);

// The other way, for people to read: "512 B", "93.8 MiB" (binary units, one decimal).
std::string human_bytes(double bytes);

}  // namespace conveyor
