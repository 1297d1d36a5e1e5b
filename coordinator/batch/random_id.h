// Random identifiers for output lines ("batch_req_...", "chatcmpl-..."): unique in
// practice, not secret. Safe to call from any thread.
#pragma once

#include <cstddef>
#include <string>

namespace conveyor {

// `digits` lowercase hex digits from a per-thread generator seeded by std::random_device.
std::string random_hex(std::size_t digits);

}  // namespace conveyor
