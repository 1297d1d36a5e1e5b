// Names the tiers of a worker's K/V store below the device cache, as the scheduler's
// swap ledger and the step plans that carry swaps name them.
#pragma once

#include <cstdint>
#include <string_view>

namespace conveyor {

enum class KvTierId : std::uint8_t { kHost = 1, kDisk = 2 };

inline std::string_view tier_name(KvTierId tier) {
  return tier == KvTierId::kDisk ? "disk" : "host";
}

}  // namespace conveyor
