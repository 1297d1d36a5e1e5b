#include "worker/host_pinning.h"

#include <atomic>
#include <string>

#include "common/log/log.h"
#include "common/status.h"

namespace conveyor {
namespace {

// A refusal usually repeats for every range after it (the same lock limit), so only
// the first one is worth a line.
void warn_once(const Backend& backend, std::size_t bytes, const Error& error) {
  static std::atomic<bool> warned{false};
  if (warned.exchange(true)) return;
  log::warn(logger("memory"),
            "cannot pin host memory for " + backend.name() + " (" + std::to_string(bytes >> 20) +
                " MiB): " + error.what() +
                "; going on unpinned, with host-device copies staged by the driver",
            {{"backend", backend.name()}, {"bytes", bytes}});
}

}  // namespace

PinHostMemory host_pinner(Backend& backend) {
  return [&backend](std::span<std::byte> range) -> std::unique_ptr<HostPinning> {
    try {
      return backend.pin_host_memory(range.data(), range.size());
    } catch (const Error& error) {
      warn_once(backend, range.size(), error);
      return nullptr;
    }
  };
}

std::unique_ptr<HostPinning> pin_read_only_or_warn(Backend& backend, const void* data,
                                                   std::size_t bytes) {
  try {
    return backend.pin_host_memory_read_only(data, bytes);
  } catch (const Error& error) {
    warn_once(backend, bytes, error);
    return nullptr;
  }
}

}  // namespace conveyor
